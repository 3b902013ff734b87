"""Today (the exchange's UTC day): each asset's wallet change since 00:00 UTC, split by reason, from what the stream
pushes (PROTOCOL.md §10: no endpoint gives it).

A fill settles its realized PnL and its commission into the wallet in one ``ACCOUNT_UPDATE`` (``m`` ORDER); the
``ORDER_TRADE_UPDATE`` of the same fill says how much of it was which (``rp`` realized profit, ``n`` commission in
``N``). A funding fee is an ``ACCOUNT_UPDATE`` of its own (``m`` FUNDING_FEE, ``a.S`` the symbol). Whatever else moved
the wallet (a transfer, an adjustment, a change a poll found with no push: its reason unknown) is ``other``: the
wallet change less the three, so the parts always add up to what the wallet did. Nothing from before the figures
began is invented: ``since_ms`` says from when they count (the first snapshot of this run, or 00:00 UTC after a
roll-over). Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from services.fills import Trade
from services.models import Change
from services.shapes import decimal_text

DAY_MS = 86_400_000
ZERO = Decimal(0)
FUNDING = "FUNDING_FEE"


@dataclass
class DayFigures:
    """One asset's day: the wallet's change and what of it was realized PnL, commission and funding."""

    change: Decimal = ZERO
    realized: Decimal = ZERO
    commission: Decimal = ZERO
    funding: Decimal = ZERO
    unknown: int = 0  # changes whose size is not known (an asset's first word was a push): counted, not summed

    @property
    def other(self) -> Decimal:
        return self.change - self.realized - self.commission - self.funding

    @property
    def pnl(self) -> Decimal:
        """What trading cost or made: realized PnL, commission and funding (transfers are not PnL)."""
        return self.realized + self.commission + self.funding

    def json_dict(self) -> dict[str, object]:
        return {
            "change": decimal_text(self.change),
            "pnl": decimal_text(self.pnl),
            "realized": decimal_text(self.realized),
            "commission": decimal_text(self.commission),
            "funding": decimal_text(self.funding),
            "other": decimal_text(self.other),
            "unknown": self.unknown,
        }


@dataclass(frozen=True)
class TodayView:
    """Today's figures at one moment."""

    day: str  # YYYY-MM-DD, UTC
    since_ms: int | None  # from when they count; None before the first snapshot (nothing counted yet)
    assets: dict[str, DayFigures] = field(default_factory=dict)

    def figures(self, asset: str) -> DayFigures:
        return self.assets.get(asset) or DayFigures()

    def json_dict(self) -> dict[str, object]:
        return {
            "day": self.day,
            "since_ms": self.since_ms,
            "assets": {asset: figures.json_dict() for asset, figures in sorted(self.assets.items())},
        }


def day_of(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d")


class Today:
    """The day's figures, kept as changes and fills come; a new UTC day starts them again from 00:00."""

    def __init__(self) -> None:
        self.since_ms: int | None = None
        self._day_start = 0
        self._assets: dict[str, DayFigures] = {}
        self.previous: TodayView | None = None  # the day before, as it stood at midnight (the daily summary's)

    def start(self, at_ms: int) -> None:
        """The figures count from here (the first snapshot: before it no change can be seen)."""
        if self.since_ms is None:
            self.since_ms = at_ms
            self._day_start = at_ms - at_ms % DAY_MS

    def _current(self, at_ms: int) -> bool:
        """Whether an event of ``at_ms`` counts: today's, once counting has started (a new day starts afresh)."""
        if self.since_ms is None:
            return False
        if at_ms >= self._day_start + DAY_MS:
            self.previous = self._view()
            self._day_start = at_ms - at_ms % DAY_MS
            self.since_ms = self._day_start
            self._assets = {}
        return at_ms >= self._day_start

    def change(self, change: Change) -> None:
        if not self._current(change.at_ms):
            return
        figures = self._assets.setdefault(change.asset, DayFigures())
        if change.delta is None:
            figures.unknown += 1
            return
        figures.change += change.delta
        if change.reason == FUNDING:
            figures.funding += change.delta

    def trade(self, trade: Trade) -> None:
        if not self._current(trade.at_ms):
            return
        if trade.realized:
            self._assets.setdefault(trade.realized_asset, DayFigures()).realized += trade.realized
        if trade.commission:
            self._assets.setdefault(trade.commission_asset, DayFigures()).commission += trade.commission

    def at(self, now_ms: int) -> TodayView:
        """The figures as they stand at ``now_ms`` (the exchange's clock): a quiet midnight starts a new day too."""
        if self.since_ms is None:
            return TodayView(day_of(now_ms - now_ms % DAY_MS), None)
        self._current(now_ms)
        return self._view()

    def _view(self) -> TodayView:
        assets = {asset: DayFigures(f.change, f.realized, f.commission, f.funding, f.unknown)
                  for asset, f in self._assets.items()}  # fmt: skip
        return TodayView(day_of(self._day_start), self.since_ms, assets)


def day_from_history(day_start_ms: int, changes: list[Change], trades: list[Trade]) -> TodayView:
    """A whole UTC day's figures from what the local history recorded of it (every run that was recording)."""
    today = Today()
    today.start(day_start_ms)
    items: list[Change | Trade] = [*changes, *trades]
    for item in sorted(items, key=lambda x: x.at_ms):
        if item.at_ms >= day_start_ms + DAY_MS:
            continue
        if isinstance(item, Change):
            today.change(item)
        else:
            today.trade(item)
    return today.at(day_start_ms)
