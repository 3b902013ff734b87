"""The local history: every balance change and why, and a sample of the totals once a minute, in SQLite.

One file per data dir (the platform's, or ``--data-dir``), WAL so that a dashboard and ``balance-tui history`` use it
at once. Rows are per account: the endpoint and the key's public id or the profile — never a secret. Amounts are the
exchange's exact decimal text. The schema carries a version (``PRAGMA user_version``) and migrates forward; a store
written by a newer balance-tui, or a file that is not one, is refused with one line (:class:`HistoryError`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

from services.files import private_opener
from services.fills import Trade
from services.models import AccountTotals, Change
from services.shapes import decimal_text

SCHEMA = 3
FILE_NAME = "history.sqlite3"
DEFAULT_RETENTION_DAYS = 90

_MIGRATIONS = {
    1: """
        CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            asset TEXT NOT NULL,
            old_wallet TEXT,
            new_wallet TEXT NOT NULL,
            delta TEXT NOT NULL,
            reason TEXT NOT NULL,
            symbol TEXT,
            source TEXT NOT NULL
        );
        CREATE INDEX changes_by_time ON changes (account, at_ms);
        CREATE TABLE samples (
            account TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            wallet TEXT NOT NULL,
            upnl TEXT NOT NULL,
            margin_balance TEXT NOT NULL
        );
        CREATE INDEX samples_by_time ON samples (account, at_ms);
    """,
    # A change is stored once however many processes see it (a dashboard and a watch on one store): keyed by what
    # the exchange said of it, the account, the asset, the transaction time and the new wallet. Its delta may be
    # unknown (a push for an asset no poll had listed: the old balance is not known). Duplicates an older version
    # stored are dropped, the first kept.
    2: """
        CREATE TABLE changes_v2 (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            asset TEXT NOT NULL,
            old_wallet TEXT,
            new_wallet TEXT NOT NULL,
            delta TEXT,
            reason TEXT NOT NULL,
            symbol TEXT,
            source TEXT NOT NULL,
            UNIQUE (account, asset, at_ms, new_wallet)
        );
        INSERT INTO changes_v2 SELECT * FROM changes WHERE id IN (
            SELECT MIN(id) FROM changes GROUP BY account, asset, at_ms, new_wallet
        );
        DROP TABLE changes;
        ALTER TABLE changes_v2 RENAME TO changes;
        CREATE INDEX changes_by_time ON changes (account, at_ms);
    """,
    # Fills (ORDER_TRADE_UPDATE): how much of a fill's wallet change was realized PnL and how much commission, for a
    # day's figures by reason. Keyed by the exchange's trade: stored once however many processes see it.
    3: """
        CREATE TABLE trades (
            account TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            trade_id INTEGER NOT NULL,
            realized TEXT NOT NULL,
            realized_asset TEXT NOT NULL,
            commission TEXT NOT NULL,
            commission_asset TEXT NOT NULL,
            UNIQUE (account, symbol, trade_id, at_ms)
        );
        CREATE INDEX trades_by_time ON trades (account, at_ms);
    """,
}

#: One statement for every writer: a change already stored (another process saw it first) is not stored again;
#: what it lacked is filled in (the reason a push gives to a change a poll found first, an old balance now known).
_RECORD = """
    INSERT INTO changes (account, at_ms, asset, old_wallet, new_wallet, delta, reason, symbol, source)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (account, asset, at_ms, new_wallet) DO UPDATE SET
        old_wallet = COALESCE(changes.old_wallet, excluded.old_wallet),
        delta = COALESCE(changes.delta, excluded.delta),
        symbol = CASE WHEN changes.reason = 'UNKNOWN' THEN excluded.symbol ELSE changes.symbol END,
        source = CASE WHEN changes.reason = 'UNKNOWN' THEN excluded.source ELSE changes.source END,
        reason = CASE WHEN changes.reason = 'UNKNOWN' THEN excluded.reason ELSE changes.reason END
"""
#: How long a writer waits for another's lock (schema creation, a write) before saying the store is busy.
BUSY_TIMEOUT = 10.0


class HistoryError(Exception):
    """The store cannot be used: said in one line (corrupt, unreadable, newer schema, disk full)."""


class HistoryStore:
    """The SQLite file of one data dir; every method raises :class:`HistoryError`, never sqlite3's own errors."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        if data_dir.exists() and not data_dir.is_dir():
            raise HistoryError(f"the data dir {data_dir} is a file, not a directory: give --data-dir a directory")
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(private_opener(str(self.path), os.O_CREAT | os.O_WRONLY))  # created 0600
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            self._wal()
            self._migrate()
        except sqlite3.OperationalError as exc:
            raise HistoryError(f"the history store {self.path} is busy or cannot be used ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path} is not a history store balance-tui can read ({exc})") from None
        except OSError as exc:
            raise HistoryError(f"cannot open the history store {self.path}: {exc.strerror or exc}") from None

    def _wal(self) -> None:
        """WAL, so that readers and a writer do not block each other. Switching a new file to it takes a lock that
        SQLite does not wait for: two processes opening one new store at once retry it."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        """Bring the schema to ``SCHEMA``: read the version and migrate in one write transaction, so that of two
        processes opening the store at once one migrates and the other then finds it done (each reading version 0
        and creating the tables, one failed with 'table changes already exists', the other with 'locked')."""
        self._db.execute("BEGIN IMMEDIATE")  # the write lock first, waited for, then the version
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA:
                raise HistoryError(
                    f"{self.path} was written by a newer balance-tui (schema {version}, this one reads {SCHEMA}): "
                    "upgrade balance-tui, or point --data-dir elsewhere"
                )
            for target in range(version + 1, SCHEMA + 1):
                for statement in _statements(_MIGRATIONS[target]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")  # a migration happens whole or not at all
            raise

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as exc:  # a full disk, a file gone read-only: said, not raised as sqlite's own
            raise HistoryError(f"cannot write the history store {self.path}: {exc}") from None

    def record(self, account: str, change: Change) -> None:
        """Store a change once, whoever else stores it too (see ``_RECORD``)."""
        self._write(
            _RECORD,
            (
                account,
                change.at_ms,
                change.asset,
                None if change.old_wallet is None else decimal_text(change.old_wallet),
                decimal_text(change.new_wallet),
                None if change.delta is None else decimal_text(change.delta),
                change.reason,
                change.symbol,
                change.source,
            ),
        )

    def record_trade(self, account: str, trade: Trade) -> None:
        self._write(
            "INSERT OR IGNORE INTO trades (account, at_ms, symbol, trade_id, realized, realized_asset, commission, "
            "commission_asset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (account, trade.at_ms, trade.symbol, trade.trade_id, decimal_text(trade.realized), trade.realized_asset,
             decimal_text(trade.commission), trade.commission_asset),
        )  # fmt: skip

    def trades(self, account: str, *, since_ms: int = 0) -> list[Trade]:
        try:
            rows = self._db.execute(
                "SELECT at_ms, symbol, trade_id, realized, realized_asset, commission, commission_asset FROM trades "
                "WHERE account = ? AND at_ms >= ? ORDER BY at_ms",
                (account, since_ms),
            ).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the history store {self.path}: {exc}") from None
        return [Trade(r[0], r[1], r[2], Decimal(r[3]), r[4], Decimal(r[5]), r[6]) for r in rows]

    def sample(self, account: str, at_ms: int, wallet: Decimal, upnl: Decimal, margin_balance: Decimal) -> None:
        self._write(
            "INSERT INTO samples (account, at_ms, wallet, upnl, margin_balance) VALUES (?, ?, ?, ?, ?)",
            (account, at_ms, decimal_text(wallet), decimal_text(upnl), decimal_text(margin_balance)),
        )

    def prune(self, before_ms: int) -> None:
        self._write("DELETE FROM changes WHERE at_ms < ?", (before_ms,))
        self._write("DELETE FROM samples WHERE at_ms < ?", (before_ms,))
        self._write("DELETE FROM trades WHERE at_ms < ?", (before_ms,))

    def changes(
        self, account: str, *, since_ms: int = 0, asset: str | None = None, reason: str | None = None
    ) -> list[Change]:
        sql = "SELECT at_ms, asset, old_wallet, new_wallet, delta, reason, symbol, source FROM changes "
        sql += "WHERE account = ? AND at_ms >= ?"
        params: list[object] = [account, since_ms]
        if asset:
            sql += " AND asset = ?"
            params.append(asset.upper())
        if reason:
            sql += " AND reason = ?"
            params.append(reason.upper())
        try:
            rows = self._db.execute(sql + " ORDER BY at_ms, id", params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the history store {self.path}: {exc}") from None
        return [Change(r[0], r[1], _decimal(r[2]), Decimal(r[3]), _decimal(r[4]), r[5], r[6], r[7]) for r in rows]

    def samples(self, account: str, *, since_ms: int = 0) -> list[tuple[int, Decimal]]:
        """(time, margin balance) samples, oldest first."""
        try:
            rows = self._db.execute(
                "SELECT at_ms, margin_balance FROM samples WHERE account = ? AND at_ms >= ? ORDER BY at_ms",
                (account, since_ms),
            ).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the history store {self.path}: {exc}") from None
        return [(r[0], Decimal(r[1])) for r in rows]


def summarize(changes: list[Change]) -> list[dict[str, object]]:
    """Totals per day (UTC), reason and symbol: how much funding was paid this week. A change whose delta is not
    known is counted (``unknown``) but adds nothing to the total: a total is never made up."""
    totals: dict[tuple[str, str, str, str], Decimal] = {}
    counts: dict[tuple[str, str, str, str], int] = {}
    unknown: dict[tuple[str, str, str, str], int] = {}
    for change in changes:
        day = _day(change.at_ms)
        key = (day, change.asset, change.reason, change.symbol or "")
        totals[key] = totals.get(key, Decimal(0)) + (change.delta or 0)
        counts[key] = counts.get(key, 0) + 1
        unknown[key] = unknown.get(key, 0) + (change.delta is None)
    return [
        {"day": d, "asset": a, "reason": r, "symbol": s or None, "total": decimal_text(totals[(d, a, r, s)]),
         "count": counts[(d, a, r, s)], "unknown": unknown[(d, a, r, s)]}
        for d, a, r, s in sorted(totals)
    ]  # fmt: skip


def _statements(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _day(at_ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(at_ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d")


class HistoryRecorder:
    """Writes one account's changes and samples of its totals to a store (how often is the session's to say).

    A write that fails (a full disk) raises :class:`HistoryError`; the caller then runs on without history.
    """

    def __init__(self, store: HistoryStore, account: str) -> None:
        self.store = store
        self.account = account

    def change(self, change: Change) -> None:
        self.store.record(self.account, change)

    def trade(self, trade: Trade) -> None:
        self.store.record_trade(self.account, trade)

    def sample(self, totals: AccountTotals, now_ms: int) -> None:
        self.store.sample(
            self.account,
            now_ms,
            totals.total_wallet_balance,
            totals.total_unrealized_profit,
            totals.total_margin_balance,
        )


def account_id(endpoint: str, *, profile: str | None, api_key: str | None, demo: bool) -> str:
    """Which account rows belong to: the endpoint and the key's public id (first and last four characters) or the
    profile's name — never a secret, and never the whole key."""
    if demo:
        return "demo"
    who = f"profile:{profile}" if profile else (f"key:{api_key[:4]}…{api_key[-4:]}" if api_key else "no-key")
    return f"{endpoint}|{who}"
