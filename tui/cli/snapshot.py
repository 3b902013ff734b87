"""``balance-tui snapshot``: one poll, printed as a table or as JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from services.errors import CredentialsRejected, ExchangeError, RateLimited, because
from services.feed import AccountFeed
from services.formatting import format_amount
from services.models import AccountSnapshot
from services.settings import Settings
from tui.cli.common import EXIT_CREDENTIALS, EXIT_NETWORK, EXIT_OK, CommandError, Writer
from tui.wiring import (
    Exchange,
    make_client,
    open_exchange,
)

# -- snapshot -----------------------------------------------------------------------------------------------------


SNAPSHOT_ATTEMPTS = 5


async def fetch_once(feed: AccountFeed, attempts: int = SNAPSHOT_ATTEMPTS) -> AccountSnapshot:
    """One snapshot with every call of a full refresh answered, retrying what can be retried a few times; raises
    CommandError with the exit code. What an attempt brought is kept (the account core holds it): the next asks only
    for what is missing, at once when the last brought something (a poor link answering part of each)."""
    last: ExchangeError | None = None
    for attempt in range(1, attempts + 1):
        try:
            return await feed.refresh()
        except CredentialsRejected as exc:
            raise CommandError(because("credentials rejected", exc), EXIT_CREDENTIALS) from None
        except RateLimited as exc:
            raise CommandError(because("rate limited by the exchange", exc), EXIT_NETWORK) from None
        except ExchangeError as exc:
            last = exc
            if not exc.retryable or attempt == attempts:
                break
            if not feed.applied:
                await asyncio.sleep(getattr(exc, "retry_in", 0.0) or feed.backoff.next_delay())
    raise CommandError(because("could not fetch balances", last), EXIT_NETWORK)


#: The version of the JSON that ``snapshot --json`` and ``watch --jsonl`` print; raised when a field changes meaning
#: or goes away (new fields may appear at any time, as on the exchange).
JSON_SCHEMA = 3


def snapshot_json(snapshot: AccountSnapshot, exchange: Exchange) -> dict[str, Any]:
    return {"schema": JSON_SCHEMA, "endpoint": exchange.ws_url, "mode": exchange.label, **snapshot.json_dict()}


def snapshot_table(snapshot: AccountSnapshot) -> str:
    """A plain-text table of the snapshot, for a terminal or a log."""
    headers = ("Asset", "Wallet", "Cross wallet", "Unrealized PnL", "Available", "Max withdraw", "Margin")
    rows = [
        (
            row.asset,
            format_amount(row.wallet_balance, 8),
            format_amount(row.cross_wallet_balance, 8),
            format_amount(row.cross_un_pnl, 8, signed=True),
            format_amount(row.available_balance, 8),
            format_amount(row.max_withdraw_amount, 8),
            {True: "yes", False: "no", None: "—"}[row.margin_available],
        )
        for row in snapshot.balances.values()
    ]
    widths = [max(len(line[i]) for line in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [headers, *rows]
    ]
    if snapshot.totals is not None:
        t = snapshot.totals
        lines.append("")
        lines.append(
            f"Totals  wallet {format_amount(t.total_wallet_balance, 8)}  "
            f"unrealized {format_amount(t.total_unrealized_profit, 8, signed=True)}  "
            f"margin balance {format_amount(t.total_margin_balance, 8)}  "
            f"available {format_amount(t.available_balance, 8)}"
        )
    mode = {True: "on", False: "off", None: "unknown"}[snapshot.multi_assets_margin]
    lines.append(f"Multi-Assets mode {mode}")
    return "\n".join(lines)


async def run_snapshot(settings: Settings, *, as_json: bool, out: Writer) -> int:
    async with open_exchange(settings) as exchange, make_client(settings, exchange) as client:
        snapshot = await fetch_once(AccountFeed(client, interval=settings.interval))  # one poll: no stream needed
        if as_json:
            out.write(json.dumps(snapshot_json(snapshot, exchange), indent=2) + "\n")
        else:
            out.write(snapshot_table(snapshot) + "\n")
    return EXIT_OK
