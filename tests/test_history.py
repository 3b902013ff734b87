"""The history: every change and why, kept locally; `balance-tui history`; a bad store refused, the app runs on."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from services.clock import VirtualClock
from services.history import Change, HistoryError, HistoryStore, summarize
from services.settings import Settings
from services.simulator import ExchangeSimulator
from services.wsapi import Credentials
from tests.helpers import TEST_API_KEY, TEST_SECRET, Watch, clean_env, dashboard, factory, run_cli, started, until
from tui.app import BalanceApp
from widgets.tape import ChangeTape, HistoryPanel

T0 = 1_800_000_000_000


def change(at: int, delta: str, reason: str = "FUNDING_FEE", symbol: str | None = "BTCUSDT") -> Change:
    return Change(at, "USDT", Decimal(100), Decimal(100) + Decimal(delta), Decimal(delta), reason, symbol, "push")


def test_the_store_keeps_exact_text_filters_and_summarizes(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.record("a", change(T0, "-3.14000000"))
    store.record("a", change(T0 + 1, "-0.00000001"))
    store.record("a", change(T0 + 2, "12.5", reason="ORDER", symbol=None))
    store.record("b", change(T0, "1"))
    rows = store.changes("a")
    assert [r.delta for r in rows] == [Decimal("-3.14000000"), Decimal("-0.00000001"), Decimal("12.5")]
    assert rows[0].json_dict()["delta"] == "-3.14000000"  # the exchange's text, not a float's
    assert [r.reason for r in store.changes("a", reason="order")] == ["ORDER"]
    [funding] = [s for s in summarize(rows) if s["reason"] == "FUNDING_FEE"]
    assert funding["total"] == "-3.14000001" and funding["count"] == 2 and funding["symbol"] == "BTCUSDT"
    store.prune(T0 + 1)
    assert len(store.changes("a")) == 2
    assert (tmp_path / "history.sqlite3").stat().st_mode & 0o077 == 0  # its owner's alone
    store.close()


def test_a_corrupt_store_and_a_newer_schema_are_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "history.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="not a history store"):
        HistoryStore(tmp_path)
    newer = tmp_path / "newer"
    newer.mkdir()
    db = sqlite3.connect(newer / "history.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(HistoryError, match="newer balance-tui"):
        HistoryStore(newer)


async def test_every_pushed_change_is_recorded_and_listed_by_history(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    data = tmp_path / "store"
    sim = ExchangeSimulator()
    sim.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    pushed = []
    async with sim:
        env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
        watch = await Watch.start("--ws-url", sim.ws_url, "--data-dir", str(data), env=env)
        await watch.until(watch.stream_connected)
        for delta, reason, symbol in (
            ("-3.14", "FUNDING_FEE", "BTCUSDT"),
            ("-0.0123", "ORDER", None),
            ("5", "ADJUSTMENT", None),
        ):
            pushed.append(await sim.push_balance_change("USDT", delta, reason=reason, symbol=symbol))
        await watch.until(lambda: len(watch.of_type("change")) == len(pushed))
        code, err = await watch.stop()
        assert code == 143, err
        code, out, err2 = await run_cli("history", "--json", "--ws-url", sim.ws_url, "--data-dir", str(data), env=env)
    assert code == 0, err2
    rows = json.loads(out)["rows"]
    assert [(r["reason"], r["symbol"], r["new_wallet"]) for r in rows] == [
        (e["a"]["m"], e["a"].get("S"), e["a"]["B"][0]["wb"]) for e in pushed
    ]
    assert TEST_API_KEY not in out and TEST_SECRET not in out  # the account is named by the key's public id only
    code, out, _ = await run_cli(
        "history", "--summary", "--csv", "--ws-url", sim.ws_url, "--data-dir", str(data), env=env
    )
    assert code == 0 and out.splitlines()[0] == "day,asset,reason,symbol,total,count"


async def test_history_refuses_a_corrupt_store_with_one_line_and_exit_5(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    data = tmp_path / "store"
    data.mkdir()
    (data / "history.sqlite3").write_bytes(b"garbage" * 500)
    code, _, err = await run_cli("history", "--demo", "--data-dir", str(data), env=clean_env(tmp_path))
    assert code == 5 and "not a history store" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = await run_cli("history", "--since", "yesterday-ish", "--demo", env=clean_env(tmp_path))
    assert code == 2 and "--since" in err


async def test_the_dashboard_runs_on_without_a_corrupt_store_and_shows_the_tape(
    tmp_path: Path, sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    data = tmp_path / "store"
    data.mkdir()
    (data / "history.sqlite3").write_bytes(b"garbage" * 500)
    app = BalanceApp(
        Settings(interval=2.0, data_dir=data), clock=clock, exchange_factory=factory(sim, hmac_credentials)
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app)
        assert any("running without history" in n.message for n in app._notifications)
        await pilot.press("t")
        assert dashboard(app).query_one(HistoryPanel).display
        await until(lambda: bool(sim.listen_keys), pilot=pilot)
        await sim.push_balance_change("USDT", "-3.14", reason="FUNDING_FEE", symbol="BTCUSDT")
        tape = dashboard(app).query_one(ChangeTape)
        await until(lambda: bool(tape.changes), pilot=pilot)
        assert tape.changes[-1].reason == "FUNDING_FEE" and tape.changes[-1].delta == Decimal("-3.14000000")
        assert "running without history" in tape.note


def test_a_data_dir_that_is_a_file_is_said_plainly(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(HistoryError, match="is a file, not a directory"):
        HistoryStore(not_a_dir)
