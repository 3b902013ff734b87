"""Ordinary actions a trader takes, in a real terminal or a real process: each ends as documented, in one line, with
no traceback (suspend and resume, ctrl+c, kill -INT, a full disk, a whale's balance, the STALE frame)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from services.simulator import ExchangeSimulator, amount
from tests.helpers import CLI, TEST_API_KEY, TEST_SECRET, Terminal, Watch, clean_env, run_cli, until
from tui import exits

RESTORE = (b"\x1b[?1049l", b"\x1b[?25h")  # alternate screen left, cursor shown


@pytest.fixture
async def live_sim() -> AsyncIterator[ExchangeSimulator]:
    simulator = ExchangeSimulator()  # real clock: the app in another process stamps with the real time
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with simulator:
        yield simulator


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "config").mkdir()
    return clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)


def dashboard(sim: ExchangeSimulator, env: dict[str, str], size: tuple[int, int] = (120, 36)) -> Terminal:
    return Terminal([*CLI, "--ws-url", sim.ws_url, "--no-history"], env, size=size)


async def test_the_dashboard_comes_back_after_sigtstp_and_sigcont_and_fetches_at_once(
    live_sim: ExchangeSimulator, env: dict[str, str]
) -> None:
    term = dashboard(live_sim, env)
    try:
        await until(lambda: term.shows("LIVE") and term.shows("USDT"), limit=30)
        term.process.send_signal(signal.SIGTSTP)  # what ctrl+z sends, or kill -TSTP
        await until(term.stopped, limit=10)
        polls = sum(method.endswith("account.status") for _, method in live_sim.requests)
        term.output.clear()
        term.process.send_signal(signal.SIGCONT)  # fg
        # Back on screen, and the numbers fetched again rather than trusted (the loop stood still).
        await until(lambda: b"LIVE" in term.output and term.shows("USDT"), limit=10)
        await until(lambda: sum(m.endswith("account.status") for _, m in live_sim.requests) > polls, limit=10)
        assert term.process.poll() is None
        term.process.send_signal(signal.SIGTERM)
        assert await term.finish() == exits.TERMINATED
    finally:
        term.kill()
    assert b"Traceback" not in term.output


@pytest.mark.parametrize("how", ["ctrl+c", "kill -INT"])
async def test_ctrl_c_and_kill_int_both_end_the_dashboard_with_130(
    live_sim: ExchangeSimulator, env: dict[str, str], how: str
) -> None:
    term = dashboard(live_sim, env)
    try:
        await until(lambda: term.shows("LIVE") and bool(live_sim.user_data.listen_keys), limit=30)
        if how == "ctrl+c":
            term.type(b"\x03")
        else:
            term.process.send_signal(signal.SIGINT)
        assert await term.finish() == exits.INTERRUPTED
    finally:
        term.kill()
    tail = bytes(term.output[-4000:])
    assert all(sequence in tail for sequence in RESTORE)
    assert b"Traceback" not in term.output
    assert not live_sim.user_data.listen_keys  # the listen key was stopped on the way out


async def test_a_whales_totals_at_120_columns_are_whole_or_visibly_abbreviated(
    live_sim: ExchangeSimulator, env: dict[str, str]
) -> None:
    live_sim.account.assets["USDT"].wallet += Decimal("900000000000")
    term = dashboard(live_sim, env)
    try:
        await until(lambda: term.shows("Totals (USDT)") and term.shows("available"), limit=30)
        line = next(line for line in term.lines() if "Totals (USDT)" in line)
        assert len(line) < 120, line  # nothing runs into the edge
        available = re.search(r"available (\S+)$", line)
        assert available is not None, line
        figure = available.group(1)
        status = live_sim.last_result.get("v2/account.status") or live_sim.last_result["account.status"]
        exact = Decimal(status["availableBalance"])
        if figure[-1] in "KMBT":  # abbreviated, visibly, and never more than the exchange's figure
            scale = {"K": 3, "M": 6, "B": 9, "T": 12}[figure[-1]]
            assert Decimal(figure[:-1]).scaleb(scale) <= exact
        else:  # every integer digit
            assert Decimal(figure.replace(",", "")) == exact.quantize(Decimal(figure.replace(",", "")))
    finally:
        term.kill()


async def test_the_stale_frame_cuts_no_column(live_sim: ExchangeSimulator, env: dict[str, str]) -> None:
    term = dashboard(live_sim, env)
    try:
        await until(lambda: term.shows("LIVE") and term.shows("Age"), limit=30)
        live_sim.faults.silent = True  # the exchange stops answering: the numbers go stale, the table is framed
        await until(lambda: term.shows("STALE — last good numbers"), limit=40)
        screen = term.lines()  # one whole frame (the terminal shows only finished ones)
        headers = [line for line in screen if "Asset" in line and "Wallet" in line]
        assert len(headers) == 1, screen
        assert re.search(r"Age\s*│$", headers[0]), headers[0]  # the last column whole, inside the frame
    finally:
        term.kill()


async def test_a_changed_balance_redraws_only_its_row_in_the_terminal(
    live_sim: ExchangeSimulator, env: dict[str, str]
) -> None:
    """What reaches the terminal when one balance changes, by a poll or by a push: that asset's row, drawn again;
    no other row is sent (the table reuses the renders of the rows and cells that did not change)."""
    for asset in live_sim.account.assets.values():
        asset.update_time -= 3 * 3600 * 1000  # every age reads 3h, and stays so while the test runs
    term = dashboard(live_sim, env)
    row = re.compile(r"\s*(BNB|BTC|ETH|FDUSD|USDC|USDT)\s+[\d,]+\.\d{8}\s")

    def rows_since(mark: int) -> list[str]:
        return [text for text in term.written_since(mark) if row.match(text)]

    try:
        await until(lambda: term.shows("LIVE") and term.shows("4.20000000"), limit=30)
        await until(lambda: bool(live_sim.user_data.connections()), limit=30)
        # The first push proves the stream ("push live"), and the whole screen is restyled once for it. (ETH's, so
        # that the one age that now moves is the row the test changes.)
        await live_sim.push_balance_change("ETH", "0.5")
        await until(lambda: term.shows("push live") and term.shows("4.70000000"), limit=10)
        for how in ("poll", "push"):
            mark = term.mark()
            if how == "poll":
                live_sim.account.assets["ETH"].wallet += Decimal("1.0")
                term.type(b"r")  # refresh now
                figure = "5.70000000"
            else:
                await live_sim.push_balance_change("ETH", "-0.2")
                figure = "5.50000000"
            await until(lambda figure=figure: term.shows(figure), limit=10)  # type: ignore[misc]
            sent = rows_since(mark)
            assert any(figure in text for text in sent if text.lstrip().startswith("ETH")), (how, sent)
            assert {text.split()[0] for text in sent} == {"ETH"}, (how, sent)  # no other row was sent
    finally:
        term.kill()
    assert b"Traceback" not in term.output


@pytest.mark.parametrize("command", [["snapshot", "--json"], ["watch", "--jsonl"], ["history"]])
async def test_a_full_disk_is_one_line_and_exit_74(
    live_sim: ExchangeSimulator, env: dict[str, str], command: list[str]
) -> None:
    args = [*CLI, *command, "--ws-url", live_sim.ws_url]
    with open("/dev/full", "w") as full:
        process = await asyncio.create_subprocess_exec(*args, env=env, stdout=full, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == exits.OUTPUT, err
    assert err.decode().strip().splitlines() == ["balance-tui: cannot write the output: No space left on device"]


async def test_version_and_every_exit_code_in_help(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    code, out, _ = await run_cli("--version", env=clean_env(tmp_path))
    assert code == 0 and re.fullmatch(r"balance-tui \d+\.\d+\.\d+\S*\n", out), out
    code, out, _ = await run_cli("--help", env=clean_env(tmp_path))
    text = " ".join(out.split())
    assert code == 0
    for number, meaning in exits.MEANINGS:
        assert f"{number} {meaning}" in text, (number, meaning)


@pytest.mark.parametrize(("fault", "n"), [("drop_after", 2), ("malformed_every", 3)])
async def test_watch_on_a_poor_link_prints_the_exact_balances_within_5_s(
    live_sim: ExchangeSimulator, env: dict[str, str], fault: str, n: int
) -> None:
    """A link that drops after every two requests, or spoils every third reply: watch printed no balance at all
    while the exchange answered thirty requests in 25 s."""
    setattr(live_sim.faults, fault, n)
    exact = {asset: amount(a.wallet) for asset, a in live_sim.account.assets.items()}
    watch = await Watch.start("--ws-url", live_sim.ws_url, "--no-stream", "--no-history", env=env)
    try:
        await watch.until(lambda: bool(watch.lines))  # started (a slow start on a busy machine is not the link's)
        started = asyncio.get_running_loop().time()
        await watch.until(
            lambda: any(
                {a: r["wallet_balance"] for a, r in line["balances"].items()} == exact
                for line in watch.of_type("snapshot")
            )
        )
        took = asyncio.get_running_loop().time() - started
    finally:
        code, err = await watch.stop()
    assert took < 5, took
    assert code == exits.TERMINATED and "Traceback" not in err, err


@pytest.mark.parametrize(("fault", "n"), [("drop_after", 2), ("malformed_every", 2), ("silent_after", 3)])
async def test_snapshot_on_a_poor_link_gathers_what_each_connection_answers(
    live_sim: ExchangeSimulator, env: dict[str, str], fault: str, n: int
) -> None:
    setattr(live_sim.faults, fault, n)
    code, out, err = await run_cli("snapshot", "--json", "--ws-url", live_sim.ws_url, env=env, timeout=90)
    assert code == 0, err
    balances = json.loads(out)["balances"]
    assert {a: r["wallet_balance"] for a, r in balances.items()} == {
        asset: amount(a.wallet) for asset, a in live_sim.account.assets.items()
    }
    assert all(r["margin_available"] is not None for r in balances.values())
