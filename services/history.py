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
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from services.files import private_opener

SCHEMA = 1
FILE_NAME = "history.sqlite3"
DEFAULT_RETENTION_DAYS = 90
SAMPLE_EVERY_MS = 60_000

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
}


class HistoryError(Exception):
    """The store cannot be used: said in one line (corrupt, unreadable, newer schema, disk full)."""


@dataclass(frozen=True)
class Change:
    """One balance change of one asset: what the wallet was, what it became, and why."""

    at_ms: int
    asset: str
    old_wallet: Decimal | None
    new_wallet: Decimal
    delta: Decimal
    reason: str
    symbol: str | None
    source: str  # push or poll

    def json_dict(self) -> dict[str, object]:
        return {
            "at_ms": self.at_ms,
            "asset": self.asset,
            "old_wallet": None if self.old_wallet is None else format(self.old_wallet, "f"),
            "new_wallet": format(self.new_wallet, "f"),
            "delta": format(self.delta, "f"),
            "reason": self.reason,
            "symbol": self.symbol,
            "source": self.source,
        }


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
            self._db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path} is not a history store balance-tui can read ({exc})") from None
        except OSError as exc:
            raise HistoryError(f"cannot open the history store {self.path}: {exc.strerror or exc}") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA:
            raise HistoryError(
                f"{self.path} was written by a newer balance-tui (schema {version}, this one reads {SCHEMA}): "
                "upgrade balance-tui, or point --data-dir elsewhere"
            )
        for target in range(version + 1, SCHEMA + 1):
            # One transaction a step: a migration either happens whole or not at all.
            self._db.executescript(f"BEGIN; {_MIGRATIONS[target]} PRAGMA user_version = {target}; COMMIT;")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as exc:  # a full disk, a file gone read-only: said, not raised as sqlite's own
            raise HistoryError(f"cannot write the history store {self.path}: {exc}") from None

    def record(self, account: str, change: Change) -> None:
        self._write(
            "INSERT INTO changes (account, at_ms, asset, old_wallet, new_wallet, delta, reason, symbol, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account,
                change.at_ms,
                change.asset,
                None if change.old_wallet is None else format(change.old_wallet, "f"),
                format(change.new_wallet, "f"),
                format(change.delta, "f"),
                change.reason,
                change.symbol,
                change.source,
            ),
        )

    def sample(self, account: str, at_ms: int, wallet: Decimal, upnl: Decimal, margin_balance: Decimal) -> None:
        self._write(
            "INSERT INTO samples (account, at_ms, wallet, upnl, margin_balance) VALUES (?, ?, ?, ?, ?)",
            (account, at_ms, format(wallet, "f"), format(upnl, "f"), format(margin_balance, "f")),
        )

    def prune(self, before_ms: int) -> None:
        self._write("DELETE FROM changes WHERE at_ms < ?", (before_ms,))
        self._write("DELETE FROM samples WHERE at_ms < ?", (before_ms,))

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
        return [
            Change(r[0], r[1], None if r[2] is None else Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), r[5], r[6], r[7])
            for r in rows
        ]

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
    """Totals per day (UTC), reason and symbol: how much funding was paid this week."""
    totals: dict[tuple[str, str, str, str], Decimal] = {}
    counts: dict[tuple[str, str, str, str], int] = {}
    for change in changes:
        day = _day(change.at_ms)
        key = (day, change.asset, change.reason, change.symbol or "")
        totals[key] = totals.get(key, Decimal(0)) + change.delta
        counts[key] = counts.get(key, 0) + 1
    return [
        {"day": d, "asset": a, "reason": r, "symbol": s or None, "total": format(totals[(d, a, r, s)], "f"),
         "count": counts[(d, a, r, s)]}
        for d, a, r, s in sorted(totals)
    ]  # fmt: skip


def _day(at_ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(at_ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d")


class HistoryRecorder:
    """Writes one account's changes, and a sample of its totals once a minute, to a store.

    A write that fails (a full disk) raises :class:`HistoryError` once; the caller then runs on without history.
    """

    def __init__(self, store: HistoryStore, account: str) -> None:
        self.store = store
        self.account = account
        self._sampled_at = 0
        self.session: list[Change] = []  # this session's changes, newest last (the dashboard's tape)

    def change(self, change: Change) -> None:
        self.session.append(change)
        del self.session[:-500]
        self.store.record(self.account, change)

    def snapshot(self, wallet: Decimal, upnl: Decimal, margin_balance: Decimal, now_ms: int) -> bool:
        """Sample the totals if a minute has passed since the last sample; returns whether it did."""
        if now_ms - self._sampled_at < SAMPLE_EVERY_MS:
            return False
        self._sampled_at = now_ms
        self.store.sample(self.account, now_ms, wallet, upnl, margin_balance)
        return True


def account_id(endpoint: str, *, profile: str | None, api_key: str | None, demo: bool) -> str:
    """Which account rows belong to: the endpoint and the key's public id (first and last four characters) or the
    profile's name — never a secret, and never the whole key."""
    if demo:
        return "demo"
    who = f"profile:{profile}" if profile else (f"key:{api_key[:4]}…{api_key[-4:]}" if api_key else "no-key")
    return f"{endpoint}|{who}"
