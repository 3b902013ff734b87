"""The balance table's columns, pure: how each cell is formatted from a row, and the raw value it sorts by.

A cell carries its sort value (:class:`SortableText`): a sort never reads a figure or a name back out of the text
shown, which an alert's marker or a cut name changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from rich.style import Style
from rich.text import Text

from services.formatting import fit_amount
from services.models import AssetBalance

SortValue = Decimal | str | int


class SortableText(Text):
    """A cell's Text that carries what the row is sorted by: the raw value, never read back from what is shown.

    What a cell reads may change without the row changing (an alert's ⚑ before the asset's name, an abbreviation,
    "≈"): the sort looks at ``sort_value`` alone.
    """

    __slots__ = ("sort_value",)

    def __init__(
        self, text: str, *, sort_value: SortValue, style: Style | str = "", justify: Justify = "right"
    ) -> None:
        super().__init__(text, style=style, justify=justify)
        self.sort_value = sort_value


Justify = Literal["left", "center", "right"]


@dataclass(frozen=True)
class Cell:
    """A cell's text, alignment and tone (``gain``, ``loss``, ``muted`` or none), before styling."""

    text: str
    justify: Justify = "right"
    tone: str = ""


@dataclass(frozen=True)
class Column:
    """One column: its key, header, width, and how a row becomes its cell and its sort value."""

    key: str
    label: str
    width: int  # the least width; an amount column grows to its widest amount while the terminal has room
    cell: Callable[[AssetBalance, int, int, int], Cell]  # (row, decimal places, now, width) → cell
    sort_value: Callable[[AssetBalance], SortValue]
    compact: bool = True  # kept when the terminal is narrow
    short_label: str = ""  # the header when the terminal is narrow, if the label does not fit


def _amount(
    get: Callable[[AssetBalance], Decimal], *, signed: bool = False
) -> Callable[[AssetBalance, int, int, int], Cell]:
    def cell(row: AssetBalance, places: int, _now: int, width: int) -> Cell:
        # Every integer digit, or visibly shortened (1.000T): a whale's balance never reads as a smaller one.
        text = fit_amount(get(row), places, width, signed=signed)
        tone = ""
        if signed and text.startswith("+"):
            tone = "gain"
        elif signed and text.startswith("-"):
            tone = "loss"
        return Cell(text, "right", tone)

    return cell


#: Marks a figure computed from mark prices (an estimate until the next poll): a sign a trader reads, not a colour.
ESTIMATE = "≈"


def _upnl(row: AssetBalance, places: int, now: int, width: int) -> Cell:
    if row.upnl_source != "mark":
        return _amount(lambda r: r.cross_un_pnl, signed=True)(row, places, now, width)
    cell = _amount(lambda r: r.cross_un_pnl, signed=True)(row, places, now, width - 1)
    return Cell(ESTIMATE + cell.text, cell.justify, cell.tone)


def _margin(row: AssetBalance, _places: int, _now: int, _width: int) -> Cell:
    if row.margin_available is None:
        return Cell("—", "center", "muted")
    return Cell("yes" if row.margin_available else "no", "center")


def format_age(seconds: float) -> str:
    """A short age: ``4s``, ``12m``, ``3h``, ``2d``."""
    if seconds < 60:
        return f"{max(0, int(seconds))}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def coarse_age(seconds: float, step: int = 5) -> str:
    """An age in ``step``-second steps under a minute: enough to judge freshness, and 12 repaints a minute (at 5 s
    steps), not 60."""
    if seconds < step:
        return f"<{step}s"
    if seconds < 60:
        return f"{int(seconds // step * step)}s"
    return format_age(seconds)


def next_age_change_ms(age_ms: int, step: int = 5) -> int:
    """Milliseconds until :func:`coarse_age` of an age this old reads differently (the next step it crosses)."""
    fine = step * 1000
    for limit, every in ((60_000, fine), (3_600_000, 60_000), (86_400_000, 3_600_000)):
        if age_ms < limit:
            return every - age_ms % every if age_ms >= 0 else -age_ms
    return 86_400_000 - age_ms % 86_400_000


def _age(row: AssetBalance, _places: int, now_ms: int, _width: int) -> Cell:
    if not row.update_time_ms:
        return Cell("—", "right", "muted")
    return Cell(coarse_age((now_ms - row.update_time_ms) / 1000), "right")


def cut_name(asset: str, width: int) -> str:
    """An asset's name, cut with a marker when it is longer than its column."""
    return asset if len(asset) <= width else asset[: width - 1] + "…"


COLUMNS: tuple[Column, ...] = (
    Column("asset", "Asset", 7, lambda r, _p, _n, w: Cell(cut_name(r.asset, w), "left"), lambda r: r.asset),
    Column("wallet", "Wallet", 17, _amount(lambda r: r.wallet_balance), lambda r: r.wallet_balance),
    Column(
        "cross",
        "Cross wallet",
        17,
        _amount(lambda r: r.cross_wallet_balance),
        lambda r: r.cross_wallet_balance,
        compact=False,
    ),
    Column(
        "upnl",
        "Unrealized PnL",
        15,
        _upnl,
        lambda r: r.cross_un_pnl,
        short_label="Unreal. PnL",
    ),
    # In Multi-Assets mode a margin asset's figure is the whole account's available, counted in that asset (its own
    # unit, as the exchange sends it): the header says so (ACCOUNT_AVAILABLE) while any row shown is one.
    Column("available", "Available", 17, _amount(lambda r: r.available_balance), lambda r: r.available_balance),
    Column(
        "max_withdraw",
        "Max withdraw",
        17,
        _amount(lambda r: r.max_withdraw_amount),
        lambda r: r.max_withdraw_amount,
        compact=False,
    ),
    Column("margin", "Margin", 6, _margin, lambda r: {True: 2, None: 1, False: 0}[r.margin_available]),
    Column("age", "Age", 4, _age, lambda r: -r.update_time_ms),
)
SORTABLE = tuple(column.key for column in COLUMNS)
ACCOUNT_AVAILABLE = ("Acct. available", "Acct avail.")  # the Available header (full, narrow) over the account's
AMOUNT_COLUMNS = ("wallet", "cross", "upnl", "available", "max_withdraw")
SIGNED_COLUMNS = ("upnl",)


def display_key(row: AssetBalance) -> tuple[object, ...]:
    """What a row's cells are drawn from (Age aside, which the tick redraws)."""
    return (
        row.wallet_balance,
        row.cross_wallet_balance,
        row.cross_un_pnl,
        row.available_balance,
        row.max_withdraw_amount,
        row.margin_available,
        row.update_time_ms,
        row.available_scope,
        row.upnl_source,
    )
