"""A failure nobody planned for ends balance-tui with one line and a report, never a traceback with a frame's locals
(Textual's crash screen prints them: one could be the signer or the settings holding the secret)."""

from __future__ import annotations

import re
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.simulator import ExchangeSimulator
from tests.helpers import TEST_API_KEY, TEST_SECRET, Terminal, Watch, clean_env, until
from tui import exits

# A balance-tui whose `target` fails, in a frame whose locals hold the settings and the signer with the test secret.
CRASHING = """
import sys
import tui.app, services.alerts

def boom(*args, **kwargs):
    from services.settings import load_settings
    settings = load_settings({{}})
    credentials = settings.credentials()
    secret = settings.api_secret.get_secret_value()
    raise RuntimeError("forced for a test")

{target} = boom
from tui.cli import main
sys.exit(main())
"""
LINE = re.compile(
    r"balance-tui: stopped by an unexpected error \(RuntimeError in <string>:\d+\); the full report is in (\S+)"
)


@pytest.fixture
async def live_sim() -> AsyncIterator[ExchangeSimulator]:
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with simulator:
        yield simulator


def crashing(target: str) -> list[str]:
    return [sys.executable, "-c", CRASHING.format(target=target)]


def check_report(path: str) -> None:
    report = Path(path)
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    text = report.read_text()
    assert "RuntimeError: forced for a test" in text and "Traceback" in text
    assert TEST_SECRET not in text


async def test_a_crash_in_the_dashboard_is_one_line_and_no_locals(live_sim: ExchangeSimulator, tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    term = Terminal([*crashing("tui.app.DashboardScreen.action_sort"), "--ws-url", live_sim.ws_url], env)
    try:
        await until(lambda: term.shows("LIVE") and bool(live_sim.user_data.listen_keys), limit=30)
        term.type(b"s")
        assert await term.finish() == exits.CRASH
    finally:
        term.kill()
    output = term.output.decode(errors="replace")
    assert TEST_SECRET not in output
    assert "Traceback" not in output and "locals" not in output
    assert b"\x1b[?1049l" in term.output  # the terminal restored, before the line
    after = re.sub(r"\x1b\[[0-9;?<>=]*[A-Za-z]", "", output.rsplit("\x1b[?1049l", 1)[1])  # what is left on screen
    found = LINE.search(after)
    assert found is not None, after
    assert len([line for line in after.splitlines() if line.strip()]) == 1, after
    check_report(found.group(1))
    assert not live_sim.user_data.listen_keys  # the way out still stopped the listen key


async def test_a_crash_in_watch_is_one_line_and_no_locals(live_sim: ExchangeSimulator, tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    watch = Watch(await Watch.spawn(*crashing("services.alerts.Alerts.check"), "watch", "--jsonl",
                                    "--ws-url", live_sim.ws_url, env=env))  # fmt: skip
    code, err = await watch.stop(terminate=False)
    assert code == exits.CRASH, err
    assert TEST_SECRET not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    found = LINE.search(err)
    assert found is not None, err
    check_report(found.group(1))
