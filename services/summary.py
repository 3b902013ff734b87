"""What balance-tui says away from the screen: one message per alert fired or resolved, and the daily summary.

The summary is the UTC day's change per asset by reason (funding by symbol), from the local history where it is
kept (every run that was recording that day), else from what this run saw; with the account as it stands when the
summary is sent (balances, margin ratio, the nearest liquidation). ``balance-tui history --summary`` prints the same
text for the days it is asked for. Pure text: no I/O here but the store it is handed.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from services.alerts import AlertEvent
from services.delivery import Message
from services.formatting import format_amount, format_exact, format_ratio
from services.models import AccountSnapshot, Change
from services.risktext import asset_today, nearest_text
from services.today import DAY_MS, TodayView

FUNDING = "FUNDING_FEE"


def utc_text(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def alert_message(event: AlertEvent, account: str) -> Message:
    """One alert as a message: which account, which rule, the exact figure, when, and whether the data was stale."""
    verb = "ALERT" if event.state == "firing" else "resolved"
    value = f" at {format_exact(event.value)}" if event.value is not None else ""
    stale = " (on stale data)" if event.stale else ""
    lines = [
        f"account: {account}",
        f"rule: {event.rule}",
        f"state: {event.state}",
        f"value: {format_exact(event.value) if event.value is not None else '—'}",
        f"when: {utc_text(event.at_ms)}",
    ]
    if event.stale:
        lines.append("on stale data: the figure was not current when it was read")
    if event.detail:
        lines.append(f"detail: {event.detail}")
    return Message(f"balance-tui {account}: {verb} {event.rule}{value}{stale}", "\n".join(lines))


def day_text(account: str, day: TodayView, funding: list[Change]) -> list[str]:
    """The day's lines: the change per asset by reason, and the funding paid by symbol."""
    lines = [f"balance-tui daily summary · {account} · {day.day} (UTC)"]
    if day.since_ms is not None and day.since_ms % DAY_MS:
        lines.append(f"counted from {utc_text(day.since_ms)} (nothing was recorded before)")
    moved = sorted(day.assets.items(), key=lambda item: (item[0] != "USDT", item[0]))
    lines += [asset_today(asset, figures) for asset, figures in moved] or ["no balance change recorded"]
    paid: dict[tuple[str, str], Decimal] = {}
    for change in funding:
        if change.delta is not None:
            key = (change.asset, change.symbol or "?")
            paid[key] = paid.get(key, Decimal(0)) + change.delta
    if paid:
        lines.append("funding: " + " · ".join(f"{symbol} {format_amount(total, 8, signed=True)} {asset}"
                                              for (asset, symbol), total in sorted(paid.items())))  # fmt: skip
    return lines


def now_text(snapshot: AccountSnapshot | None) -> list[str]:
    """The account as it stands: wallets held, the margin ratio, the nearest liquidation."""
    if snapshot is None:
        return ["now: no figures yet"]
    held = [(asset, row.wallet_balance) for asset, row in sorted(snapshot.balances.items()) if row.wallet_balance]
    lines = ["balances: " + " · ".join(f"{asset} {format_exact(wallet)}" for asset, wallet in held)]
    if snapshot.totals is not None:
        unit = "USD" if snapshot.multi_assets_margin else "USDT"
        lines.append(f"margin balance {format_amount(snapshot.totals.total_margin_balance, 2)} {unit} · "
                     f"margin ratio {format_ratio(snapshot.totals.margin_ratio)}")  # fmt: skip
    lines.append(nearest_text(snapshot.positions))
    return lines


class DailySchedule:
    """When the daily summary is due: every day at ``HH:MM`` of this machine's local time."""

    def __init__(self, at: str) -> None:
        self.at = parse_time_of_day(at)
        self._next: int | None = None

    def due(self, now_ms: int) -> bool:
        """True once at each ``HH:MM`` (the first call only plans the next)."""
        if self._next is None:
            self._next = self._following(now_ms)
            return False
        if now_ms < self._next:
            return False
        self._next = self._following(now_ms)
        return True

    def _following(self, now_ms: int) -> int:
        now = datetime.datetime.fromtimestamp(now_ms / 1000).astimezone()
        hour, minute = self.at
        when = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if when <= now:
            when = (when + datetime.timedelta(days=1)).replace(hour=hour, minute=minute)
        return int(when.timestamp() * 1000)


def parse_time_of_day(text: str) -> tuple[int, int]:
    """``08:00`` → (8, 0); raises ValueError naming the setting."""
    hour, sep, minute = text.strip().partition(":")
    if sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60:
        return int(hour), int(minute)
    raise ValueError(f"daily_summary {text!r}: give a local time of day as HH:MM, e.g. 08:00")


def yesterday_start(now_ms: int) -> int:
    return now_ms - now_ms % DAY_MS - DAY_MS
