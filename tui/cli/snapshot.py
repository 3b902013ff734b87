"""``balance-tui snapshot``: one poll, printed as a table or as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

from services.errors import CredentialsRejected, ExchangeError, RateLimited, because
from services.feed import AccountFeed
from services.formatting import format_amount, mask_json
from services.keyaudit import KeyAudit, explain_rejection, unknown
from services.models import AccountSnapshot
from services.settings import Settings
from tui.cli.common import EXIT_CREDENTIALS, EXIT_NETWORK, EXIT_OK, EXIT_PORTFOLIO_MARGIN, CommandError, Writer
from tui.wiring import (
    Exchange,
    make_client,
    make_key_checker,
    open_exchange,
)

# -- snapshot -----------------------------------------------------------------------------------------------------


SNAPSHOT_ATTEMPTS = 5
KEY_CHECK_AFTER = 3.0  # seconds the key's check may take once the balances are in


async def fetch_once(
    feed: AccountFeed, attempts: int = SNAPSHOT_ATTEMPTS, *, audit: Awaitable[KeyAudit] | None = None
) -> AccountSnapshot:
    """One snapshot with every call of a full refresh answered, retrying what can be retried a few times; raises
    CommandError with the exit code. What an attempt brought is kept (the account core holds it): the next asks only
    for what is missing, at once when the last brought something (a poor link answering part of each). ``audit``,
    the key's check, explains a -2015 (a Portfolio Margin account has its own exit code)."""
    last: ExchangeError | None = None
    for attempt in range(1, attempts + 1):
        try:
            return await feed.refresh()
        except CredentialsRejected as exc:
            if exc.code == -2015 and audit is not None:
                rejection = explain_rejection(await audit)
                if rejection.kind == "portfolio margin":
                    raise CommandError(rejection.text, EXIT_PORTFOLIO_MARGIN) from None
                raise CommandError(f"{because('credentials rejected', exc)} — {rejection.text}",
                                   EXIT_CREDENTIALS) from None  # fmt: skip
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


def snapshot_json(snapshot: AccountSnapshot, exchange: Exchange, *, key: KeyAudit | None = None) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA,
        "endpoint": exchange.ws_url,
        "mode": exchange.label,
        **snapshot.json_dict(),
        "key": key.json_dict() if key is not None else None,
    }


def snapshot_table(snapshot: AccountSnapshot, key: KeyAudit | None = None, *, private: bool = False) -> str:
    """A plain-text table of the snapshot, for a terminal or a log (every amount masked when ``private``)."""
    headers = ("Asset", "Wallet", "Cross wallet", "Unrealized PnL", "Available", "Max withdraw", "Margin")

    def amount(value: Decimal, signed: bool = False) -> str:
        return format_amount(value, 8, signed=signed, private=private)

    rows = [
        (
            row.asset,
            amount(row.wallet_balance),
            amount(row.cross_wallet_balance),
            amount(row.cross_un_pnl, signed=True),
            amount(row.available_balance),
            amount(row.max_withdraw_amount),
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
            f"Totals  wallet {amount(t.total_wallet_balance)}  "
            f"unrealized {amount(t.total_unrealized_profit, signed=True)}  "
            f"margin balance {amount(t.total_margin_balance)}  "
            f"available {amount(t.available_balance)}"
        )
    mode = {True: "on", False: "off", None: "unknown"}[snapshot.multi_assets_margin]
    lines.append(f"Multi-Assets mode {mode}")
    if key is not None:
        lines.append(f"Key: {key.summary()}")
    return "\n".join(lines)


async def run_snapshot(settings: Settings, *, as_json: bool, out: Writer, private: bool = False) -> int:
    async with open_exchange(settings) as exchange, make_client(settings, exchange) as client:
        # The key's permissions are asked alongside the poll (another host, another weight pool), not before it.
        checking = asyncio.ensure_future(make_key_checker(settings, exchange, client).check())
        try:
            snapshot = await fetch_once(AccountFeed(client, interval=settings.interval), audit=checking)
            try:  # the numbers are in: the key's check gets a moment more, not the whole request timeout
                key = await asyncio.wait_for(asyncio.shield(checking), KEY_CHECK_AFTER)
            except TimeoutError:
                key = unknown(client.clock.time_ms(), "no answer in time")
        finally:
            checking.cancel()
        if as_json:
            document = snapshot_json(snapshot, exchange, key=key)
            out.write(json.dumps(mask_json(document) if private else document, indent=2) + "\n")
        else:
            out.write(snapshot_table(snapshot, key, private=private) + "\n")
        if warnings := key.warnings():
            print(f"balance-tui: warning: the API key {', '.join(warnings)}: use a read-only, IP-restricted key",
                  file=sys.stderr)  # fmt: skip
    return EXIT_OK
