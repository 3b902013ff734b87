"""``balance-tui history``: what the local history holds, as a table, JSON or a summary."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any

from services.fills import Trade
from services.formatting import format_amount
from services.history import HistoryError, HistoryStore, summarize
from services.models import Change
from services.settings import ConfigError, Settings
from services.summary import day_text
from services.today import DAY_MS, day_from_history
from tui.cli.common import EXIT_HISTORY, EXIT_OK, CommandError, Writer
from tui.cli.snapshot import JSON_SCHEMA
from tui.wiring import (
    history_account,
)

# -- history ------------------------------------------------------------------------------------------------------


def parse_since(text: str, now_ms: int) -> int:
    """``30m``, ``24h``, ``7d`` before now, or a date (UTC midnight); raises ConfigError."""
    import datetime

    units = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
    if text[-1:] in units and text[:-1].isdigit():
        return now_ms - int(text[:-1]) * units[text[-1]]
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r}: give 30m, 24h, 7d, or a date like 2026-11-30") from None
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp() * 1000)


def run_history(settings: Settings, args: argparse.Namespace, out: Writer) -> int:
    """Print the recorded changes of the account the options pick; never connects."""
    import time

    since = parse_since(args.since, time.time_ns() // 1_000_000)
    try:
        store = HistoryStore(settings.history_dir())
    except HistoryError as exc:
        raise CommandError(str(exc), EXIT_HISTORY) from None
    demo = settings.use_simulator
    account = history_account(settings, settings.endpoint(), demo=demo)
    try:
        changes = store.changes(account, since_ms=since, asset=args.asset, reason=args.reason)
        trades = store.trades(account, since_ms=since) if args.summary else []
    except HistoryError as exc:
        raise CommandError(str(exc), EXIT_HISTORY) from None
    finally:
        store.close()
    if args.summary and not (args.json or args.csv):
        out.write(_daily_text(settings.profile or account, changes, trades) + "\n")
        return EXIT_OK
    rows: list[dict[str, Any]] = summarize(changes) if args.summary else [c.json_dict() for c in changes]
    if args.json:
        out.write(json.dumps({"schema": JSON_SCHEMA, "account": account, "rows": rows}, indent=2) + "\n")
    elif args.csv:
        import csv

        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["at_ms"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        out.write(_history_table(rows) + "\n")
    return EXIT_OK


def _daily_text(account: str, changes: list[Change], trades: list[Trade]) -> str:
    """Each day recorded, as the daily summary says it (the change by reason, the funding by symbol)."""
    if not changes and not trades:
        return "no changes recorded for this account in that time"
    items: list[Change | Trade] = [*changes, *trades]
    starts = sorted({item.at_ms - item.at_ms % DAY_MS for item in items})
    blocks = []
    for start in starts:
        day = [c for c in changes if start <= c.at_ms < start + DAY_MS]
        fills = [t for t in trades if start <= t.at_ms < start + DAY_MS]
        figures = day_from_history(start, day, fills)
        blocks.append("\n".join(day_text(account, figures, [c for c in day if c.reason == "FUNDING_FEE"])))
    return "\n\n".join(blocks)


def _delta_text(delta: str | None) -> str:
    return format_amount(Decimal(delta), 8, signed=True) if delta is not None else "—"  # not known: first seen


def _history_table(rows: list[dict[str, Any]]) -> str:
    from datetime import datetime

    if not rows:
        return "no changes recorded for this account in that time"
    lines = [f"{'time':<19}  {'asset':<6}  {'delta':>18}  {'wallet':>22}  {'reason':<16}  symbol"]
    for r in rows:
        when = datetime.fromtimestamp(r["at_ms"] / 1000).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{when:<19}  {r['asset']:<6}  {_delta_text(r['delta']):>18}  "
            f"{format_amount(Decimal(r['new_wallet']), 8):>22}  {r['reason']:<16}  {r['symbol'] or ''}"
        )
    return "\n".join(lines)
