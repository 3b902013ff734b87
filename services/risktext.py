"""Risk at a glance, as text: a position's distance to liquidation, its ADL quantile, and today's change by reason.

Pure formatting: the risk line, the positions table and the messages (daily summary) read it alike. A distance is the
move of the mark that reaches the liquidation price, signed as the mark must go (a long's ``-7.2 %``, a short's
``+14.1 %``), cut toward danger; a position at or past its price says so in words, never as a number that could
read as safe.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

from services.formatting import cut, format_amount, format_exact
from services.positions import LivePosition
from services.today import DayFigures, TodayView

PAST = "PAST LIQ."
ADL_CELLS = 4
#: A liquidation within this fraction of the mark is shown in the warning colour.
NEAR = Decimal("0.05")


def distance_text(p: LivePosition) -> str:
    """``-7.2 %`` (a long, the mark must fall), ``+14.1 %`` (a short), ``PAST LIQ.``, ``—`` (no liquidation price),
    ``…`` (not said yet: a position a push opened, until the poll); ``≈`` when it reads a live mark."""
    distance = p.liq_distance
    if distance is None:
        return "…" if p.liquidation_price is None and p.mark_price is not None else "—"
    if distance <= 0:
        return PAST
    approx = "≈" if p.risk_estimated else ""
    sign = "-" if p.amount > 0 else "+"
    return f"{approx}{sign}{cut(distance * 100, 1, rounding=ROUND_FLOOR):,.1f} %"


def is_past(p: LivePosition) -> bool:
    distance = p.liq_distance
    return distance is not None and distance <= 0


def is_near(p: LivePosition) -> bool:
    """Within :data:`NEAR` of its liquidation price, and not yet past it."""
    distance = p.liq_distance
    return distance is not None and 0 < distance < NEAR


def adl_gauge(adl: int | None) -> str:
    """The auto-deleverage quantile as four cells and its figure: ``■■■□ 3``; 4 is first in line."""
    if adl is None:
        return "—"
    level = max(0, min(ADL_CELLS, adl))
    return "■" * level + "□" * (ADL_CELLS - level) + f" {adl}"


def price_text(value: Decimal | None) -> str:
    """A price with its significant digits (at least two decimals): ``96,408.20``, ``0.4104759``; ``—`` for none."""
    if value is None:
        return "—"
    if not value:
        return "—"  # "0" is the exchange's "no liquidation price"
    trimmed = value.normalize()
    exponent = trimmed.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return format_exact(cut(value, places))


def by_distance(positions: tuple[LivePosition, ...]) -> list[LivePosition]:
    """Nearest liquidation first (past it first of all); those without a liquidation price last."""
    return sorted(positions, key=lambda p: (p.liq_distance is None, p.liq_distance or 0, p.symbol, p.side))


def nearest(positions: tuple[LivePosition, ...]) -> LivePosition | None:
    ordered = by_distance(positions)
    return ordered[0] if ordered and ordered[0].liq_distance is not None else None


def nearest_text(positions: tuple[LivePosition, ...]) -> str:
    """``nearest liquidation: BTCUSDT -7.2 %``; a word for no positions or none with a liquidation price."""
    if not positions:
        return "no positions"
    near = nearest(positions)
    if near is None:
        return "no liquidation price on any position"
    side = f" {near.side}" if near.side != "BOTH" else ""
    return f"nearest liquidation: {near.symbol}{side} {distance_text(near)}"


def _figure(value: Decimal, private: bool = False) -> str:
    return format_amount(value, 2, signed=True, private=private)


WORDS = ("funding", "fees", "realized", "other")
SHORT_WORDS = ("fund.", "fees", "real.", "oth.")  # for a narrow terminal


def asset_today(asset: str, figures: DayFigures, *, short: bool = False, private: bool = False) -> str:
    """``-12.34 USDT · funding -3.14 · fees -1.20 · realized -8.00`` (other, when there is any); privacy mode masks
    each figure and names every reason, so that a reason left out does not say its figure was zero."""
    parts = [f"{_figure(figures.change, private)} {asset}"]
    values = (figures.funding, figures.commission, figures.realized, figures.other)
    for word, value in zip(SHORT_WORDS if short else WORDS, values, strict=True):
        if value or (private and word not in ("other", "oth.")):
            parts.append(f"{word} {_figure(value, private)}")
    if figures.unknown:
        parts.append(f"{figures.unknown} change{'s' if figures.unknown > 1 else ''} of unknown size")
    return " · ".join(parts)


def today_text(today: TodayView | None, *, short: bool = False, private: bool = False) -> str:
    """``today since 13:41 UTC: -12.34 USDT · funding -3.14 …``: every asset that moved, USDT first."""
    if today is None or today.since_ms is None:
        return "today: counting from the first numbers"
    since = datetime.fromtimestamp(today.since_ms / 1000, tz=UTC).strftime("%H:%M")
    head = f"today since {since} UTC" if since != "00:00" else "today (UTC)"
    moved = sorted(today.assets.items(), key=lambda item: (item[0] != "USDT", item[0]))
    if not moved:
        return f"{head}: no change"
    return f"{head}: " + "  |  ".join(
        asset_today(asset, figures, short=short, private=private) for asset, figures in moved
    )
