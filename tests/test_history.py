"""The history: every change and why, kept locally; `balance-tui history`; a bad store refused, the app runs on."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from services.clock import VirtualClock
from services.endpoints import Credentials
from services.history import HistoryError, HistoryStore, summarize
from services.models import Change
from services.settings import Settings
from services.simulator import ExchangeSimulator
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


# One process of the two below: wait for the signal, open the store, record the same changes, say how it went.
WRITER = """
import sys, time
from decimal import Decimal
from pathlib import Path
from services.history import Change, HistoryStore
data, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
store = HistoryStore(data)
for i in range(20):
    at = 1_800_000_000_000 + i
    store.record("acct", Change(at, "USDT", Decimal(100 + i), Decimal(101 + i), Decimal(1), "FUNDING_FEE", "BTCUSDT", "push"))
print("ok")
"""


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh store", "existing store"])
async def test_two_writers_at_once_keep_each_change_once(tmp_path: Path, fresh: bool) -> None:
    """A dashboard and a watch on one store: on a fresh store one said 'database is locked' and the other 'table
    changes already exists' (0 of 39 changes kept); on an existing one every change was stored twice."""
    import asyncio
    import sys

    data = tmp_path / "store"
    if not fresh:
        HistoryStore(data).close()
    go = tmp_path / "go"
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            str(data),
            str(go),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    await asyncio.sleep(0.3)  # both started and waiting: the file below lets them go at the same moment
    go.touch()
    results = [await asyncio.wait_for(w.communicate(), 30) for w in writers]
    assert [(w.returncode, out.strip()) for w, (out, _) in zip(writers, results, strict=True)] == [(0, b"ok")] * 2, [
        err for _, err in results
    ]
    store = HistoryStore(data)
    assert [c.at_ms for c in store.changes("acct")] == [1_800_000_000_000 + i for i in range(20)]
    [total] = summarize(store.changes("acct"))
    assert total["total"] == "20" and total["count"] == 20  # funding counted once, not twice
    store.close()


def test_a_schema_1_store_is_migrated_and_its_duplicates_dropped(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "history.sqlite3")
    db.executescript(
        """
        CREATE TABLE changes (id INTEGER PRIMARY KEY, account TEXT NOT NULL, at_ms INTEGER NOT NULL,
            asset TEXT NOT NULL, old_wallet TEXT, new_wallet TEXT NOT NULL, delta TEXT NOT NULL,
            reason TEXT NOT NULL, symbol TEXT, source TEXT NOT NULL);
        CREATE INDEX changes_by_time ON changes (account, at_ms);
        CREATE TABLE samples (account TEXT NOT NULL, at_ms INTEGER NOT NULL, wallet TEXT NOT NULL,
            upnl TEXT NOT NULL, margin_balance TEXT NOT NULL);
        CREATE INDEX samples_by_time ON samples (account, at_ms);
        PRAGMA user_version = 1;
        """
    )
    row = ("a", T0, "USDT", "100", "96.86", "-3.14", "FUNDING_FEE", "BTCUSDT", "push")
    for _ in range(2):  # stored twice by two writers of an older balance-tui
        db.execute(
            "INSERT INTO changes (account, at_ms, asset, old_wallet, new_wallet, delta, reason, symbol, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    db.commit()
    db.close()
    store = HistoryStore(tmp_path)
    assert [(c.at_ms, c.delta) for c in store.changes("a")] == [(T0, Decimal("-3.14"))]
    store.record("a", Change(T0, "USDT", None, Decimal("96.86"), None, "UNKNOWN", None, "poll"))  # seen again
    assert len(store.changes("a")) == 1 and store.changes("a")[0].reason == "FUNDING_FEE"
    store.close()


def test_a_change_first_found_by_a_poll_takes_the_pushs_reason_and_an_unknown_delta_stays_unknown(
    tmp_path: Path,
) -> None:
    store = HistoryStore(tmp_path)
    store.record("a", Change(T0, "BNB", None, Decimal("3"), None, "UNKNOWN", None, "poll"))
    store.record("a", Change(T0, "BNB", None, Decimal("3"), None, "DEPOSIT", None, "push"))
    [row] = store.changes("a")
    assert (row.reason, row.source, row.delta) == ("DEPOSIT", "push", None)
    assert row.json_dict()["delta"] is None
    [summary] = summarize([row])
    assert summary["total"] == "0" and summary["unknown"] == 1  # never made up
    store.close()


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
    assert code == 0 and out.splitlines()[0] == "day,asset,reason,symbol,total,count,unknown"
    code, out, _ = await run_cli("history", "--summary", "--ws-url", sim.ws_url, "--data-dir", str(data), env=env)
    # the daily summary's words: the day's change by reason (an ORDER change with no fill told: other)
    assert code == 0 and "+1.84 USDT · funding -3.14 · other +4.98" in out.splitlines()[1]
    assert "funding: BTCUSDT -3.14000000 USDT" in out


async def test_two_watches_on_one_fresh_store_record_each_pushed_change_once(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    data = tmp_path / "store"
    sim = ExchangeSimulator()
    sim.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with sim:
        env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
        watches = [await Watch.start("--ws-url", sim.ws_url, "--data-dir", str(data), env=env) for _ in range(2)]
        for watch in watches:
            await watch.until(watch.stream_connected)
        pushed = [await sim.push_balance_change("USDT", f"-{i}.5", reason="FUNDING_FEE") for i in range(1, 6)]
        for watch in watches:

            def all_in(w: Watch = watch) -> bool:
                return len(w.of_type("change")) == len(pushed)

            await watch.until(all_in)
        for watch in watches:
            code, err = await watch.stop()
            assert code == 143 and "history" not in err, err  # neither ran on without its history
        code, out, err = await run_cli("history", "--json", "--ws-url", sim.ws_url, "--data-dir", str(data), env=env)
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [(r["at_ms"], r["new_wallet"]) for r in rows] == [(e["T"], e["a"]["B"][0]["wb"]) for e in pushed]


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
        assert any("running without history" in text for _, text in app.said)
        await pilot.press("t")
        assert dashboard(app).query_one(HistoryPanel).display
        await until(lambda: bool(sim.user_data.listen_keys), pilot=pilot)
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


def test_fills_are_kept_once_each_beside_the_changes(tmp_path: Path) -> None:
    from services.fills import Trade

    store = HistoryStore(tmp_path)
    trade = Trade(T0, "BTCUSDT", 42, Decimal("12.50000000"), "USDT", Decimal("-0.01920000"), "BNB")
    for _ in range(2):  # a dashboard and a watch on one store both see the fill
        store.record_trade("a", trade)
    store.record_trade("b", trade)  # another account's is its own
    assert store.trades("a") == [trade]  # the exact text back, 8 places and all
    assert str(store.trades("a")[0].realized) == "12.50000000"
    assert store.trades("a", since_ms=T0 + 1) == []
    store.prune(T0 + 1)
    assert store.trades("b") == []
    store.close()
