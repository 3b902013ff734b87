"""Snapshot tests: the dashboard's pictures at 80×24 and 120×36, fixed data, fixed clock, no animation.

The data is the simulator's demo account, turned into a snapshot without any socket, so the pictures are the same on
every machine. Regenerate with ``pytest tests/test_snapshots.py --snapshot-update`` after a deliberate change.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from textual.pilot import Pilot

from services.account import AccountState, Reply
from services.clock import VirtualClock
from services.events import BalanceChangeEvent, SnapshotEvent, StatusEvent, TradeEvent
from services.fills import Trade
from services.models import (
    AccountSnapshot,
    AccountStatus,
    BalanceRow,
    Change,
    ConnectionStatus,
    LinkState,
    WeightReading,
)
from services.positions import MarkPrice, Position
from services.settings import Settings
from services.simulator import SimulatedAccount
from tui.app import BalanceApp
from tui.wiring import Exchange

NOW = 1_795_608_000_000  # 2026-11-25 12:00:00 UTC
# Demo data is shown as what it is: the embedded simulator's, labelled DEMO (never LIVE over a production URL).
ENDPOINT = "ws://127.0.0.1:8765/ws-fapi/v1"
SIZES = [(80, 24), (120, 36)]


def account_snapshot(
    *, multi_assets: bool = False, extra_assets: int = 0, age_ms: int = 400, marks: bool = True, risky: bool = False
) -> AccountSnapshot:
    account = SimulatedAccount(multi_assets=multi_assets, seed=11)
    account.add_assets(extra_assets)
    if risky:  # the ETHUSDT short's mark already past its liquidation price, the BTCUSDT long 0.5 % above its own
        account.positions[("ETHUSDT", "SHORT")].liquidation = Decimal("3400.00")
        account.positions[("BTCUSDT", "BOTH")].liquidation = Decimal("95932.63")
    account.set_time(NOW - 95_000)
    account.assets["USDT"].update_time = NOW - 2_000
    received = NOW - age_ms
    weight = WeightReading(count=312, limit=2400, own=45, resets_at_ms=NOW + 23_000, server_time_ms=NOW)
    # Through the account core, as the feed does: a full refresh's replies (account.status, then account.balance with
    # each asset's margin flag, then the positions), and (when marks flow) one fixed mark a symbol, a little off the
    # poll's, so that the pictures show figures computed from marks.
    state = AccountState()
    for method in ("account.status", "account.balance", "v2/account.position"):
        reply = Reply(method, asked_at_ms=received, answered_at_ms=received, received_at_ms=received,
                      weight=weight, rtt_ms=38)  # fmt: skip
        if method == "account.status":
            state.status_polled(AccountStatus.model_validate(account.status(v2=False)), reply)
        elif method == "account.balance":
            state.balance_polled([BalanceRow.model_validate(r) for r in account.balance_rows()], reply)
        else:
            state.positions_polled([Position.model_validate(r) for r in account.position_rows(v2=True)], reply)
    if marks:
        for symbol, price in account.marks.items():
            mark = {"e": "markPriceUpdate", "E": NOW - 200, "s": symbol, "p": str(price + account.ticks[symbol] * 7)}
            state.mark(MarkPrice.model_validate(mark))
    shown = state.snapshot(NOW, cause="poll", clock_offset_ms=12)
    assert shown is not None
    return shown.model_copy(update={"received_at_ms": received})


def status(state: LinkState, **fields: Any) -> ConnectionStatus:
    return ConnectionStatus(
        state=state, endpoint=ENDPOINT, since_ms=NOW - 1_000, interval_ms=2_000, last_success_ms=NOW - 400, **fields
    )


SCENES: dict[str, tuple[AccountSnapshot, ConnectionStatus]] = {
    "live": (account_snapshot(), status(LinkState.LIVE, stream="live")),
    "stale": (account_snapshot(age_ms=9_000, marks=False), status(LinkState.LIVE)),
    "reconnecting": (
        account_snapshot(age_ms=7_000, marks=False),
        status(LinkState.RECONNECTING, retry_at_ms=NOW + 4_000, attempt=3, detail="the connection dropped"),
    ),
    "rate_limited": (
        account_snapshot(age_ms=3_000),
        status(
            LinkState.RATE_LIMITED,
            retry_at_ms=NOW + 37_000,
            detail="Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. (code -1003)",
        ),
    ),
    "credentials_rejected": (
        account_snapshot(age_ms=5_000),
        status(
            LinkState.CREDENTIALS_REJECTED,
            detail="credentials rejected: Invalid API-key, IP, or permissions for action. (code -2015) — the key "
            "is invalid or revoked, this IP is not whitelisted, or the key lacks futures read permission",
        ),
    ),
    "multi_assets": (account_snapshot(multi_assets=True), status(LinkState.LIVE)),
    "alert": (account_snapshot(), status(LinkState.LIVE, stream="live")),
    "tape": (account_snapshot(), status(LinkState.LIVE, stream="live")),
    "forty_assets": (account_snapshot(extra_assets=34), status(LinkState.LIVE)),
    "positions": (account_snapshot(risky=True), status(LinkState.LIVE, stream="live")),
    "today": (account_snapshot(), status(LinkState.LIVE, stream="live")),
    # Privacy mode (--private): the tape and today's figures too, every amount masked; then the positions view.
    "private": (account_snapshot(), status(LinkState.LIVE, stream="live")),
    "private_positions": (account_snapshot(risky=True), status(LinkState.LIVE, stream="live")),
}


TAPE = (
    ("-0.01230000", "ORDER", None),
    ("-3.14000000", "FUNDING_FEE", "BTCUSDT"),
    ("+0.25000000", "ADJUSTMENT", None),
    ("-0.04000000", "ORDER", None),
    ("-1.07250000", "FUNDING_FEE", "ETHUSDT"),
)

TODAY = ((NOW - 2_000, "-3.14", "FUNDING_FEE", "BTCUSDT"), (NOW - 1_000, "-9.20", "ORDER", None))

#: Scenes with alert rules: the USDT available under the line, the margin ratio far from its.
ALERTS = {"alert": ["available:USDT<200000", "margin_ratio>0.99"]}


def scene(name: str) -> tuple[BalanceApp, Callable[[Pilot[int]], Any]]:
    snapshot, link = SCENES[name]
    settings = Settings(alerts=ALERTS.get(name, []), history=False, private=name.startswith("private"))
    app = BalanceApp(settings, clock=VirtualClock(start_ms=NOW))
    app.animation_level = "none"

    async def run_before(pilot: Pilot[int]) -> None:
        screen = app.dashboard
        screen.show_exchange(Exchange(ENDPOINT, "ws://127.0.0.1:8765", None, demo=True))
        screen.take(StatusEvent(link))
        if name in ("tape", "private"):
            # A day of margin balance, and the tape of a real account's reasons, all fixed.
            screen.session.margin_series.extend([Decimal(120_000 + 40 * ((i * 37) % 100) + 3 * i) for i in range(240)])
            for i, (delta, reason, symbol) in enumerate(TAPE):
                change = Change(NOW - 60_000 * (len(TAPE) - i), "USDT", None, Decimal("122607.35137903"),
                                Decimal(delta), reason, symbol, "push")  # fmt: skip
                screen.take(BalanceChangeEvent(change))
            screen.action_tape()
        screen.take(SnapshotEvent(snapshot))
        if name in ("today", "private"):  # a day's fills and funding since the first numbers (counting starts then)
            for at, delta, reason, symbol in TODAY:
                change = Change(at, "USDT", Decimal(122_600), Decimal(122_600) + Decimal(delta), Decimal(delta),
                                reason, symbol, "push")  # fmt: skip
                screen.take(BalanceChangeEvent(change))
            screen.take(TradeEvent(Trade(NOW - 1_000, "BTCUSDT", 7, Decimal("-8"), "USDT", Decimal("-1.20"), "USDT")))
            screen.take(SnapshotEvent(snapshot))
        if name in ("positions", "private_positions"):
            await pilot.press("o")
        await pilot.pause()
        await pilot.pause()
        app.clear_notifications()  # toasts come and go: the picture is of what stays

    return app, run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SCENES))
def test_dashboard_picture(snap_compare: Any, name: str, size: tuple[int, int]) -> None:
    app, run_before = scene(name)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_forty_assets_fill_the_table() -> None:
    snapshot, _ = SCENES["forty_assets"]
    assert len(snapshot.balances) == 40
