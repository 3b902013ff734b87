"""How wide each column of the balance table is: pure, from the columns shown, their headers, the rows and the room."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.formatting import format_amount
from services.models import AssetBalance
from widgets import columns

CELL_PADDING = 2  # DataTable pads each cell by one column on either side
SCROLLBAR = 2
COMPACT_WIDTH = 12


def plan(
    shown: Sequence[columns.Column],
    headers: Mapping[str, str],
    rows: Sequence[AssetBalance],
    width: int,
    *,
    compact: bool,
    places: int,
) -> dict[str, int]:
    """Each column's width: amount columns grow to their widest amount, in order, while the table has room.

    Past the room there is, an amount too wide for its column is abbreviated visibly (``1.000T``) rather than cut at
    the screen's edge, where ``900,000,000,`` would read as a far smaller number. ``headers`` are the columns'
    labels as shown (a sort arrow needs room too).
    """
    widths = {c.key: least_width(c, headers[c.key], compact=compact) for c in shown}
    room = width - SCROLLBAR - sum(w + CELL_PADDING for w in widths.values())
    widest = widest_amounts(shown, rows, places)
    if room < 0 and width:
        # Not even the least widths fit (the STALE frame takes two columns): amount columns give up the width
        # their figures do not use, then more, widest first, down to their header's (their figures then
        # abbreviate visibly). The last column (Age) is never the one cut off at the edge.
        floors = {c.key: max(COMPACT_WIDTH, len(headers[c.key]) + 2) for c in shown}
        shrinkable = [k for k in columns.AMOUNT_COLUMNS if k in widths]
        while room < 0:
            key = max(shrinkable, key=lambda k: (widths[k] > widest.get(k, 0), widths[k] - floors[k]))
            if widths[key] <= floors[key]:
                break
            widths[key] -= 1
            room += 1
        return widths
    for column in shown:
        if column.key not in widest or room <= 0:
            continue
        grow = min(room, max(0, widest[column.key] - widths[column.key]))
        widths[column.key] += grow
        room -= grow
    return widths


def least_width(column: columns.Column, header: str, *, compact: bool) -> int:
    width = COMPACT_WIDTH if column.key in columns.AMOUNT_COLUMNS and compact else column.width
    # Room for the header with its sort arrow: "Unreal. PnL ▼" must not lose the arrow.
    return max(width, len(header) + 2)


def widest_amounts(shown: Sequence[columns.Column], rows: Sequence[AssetBalance], places: int) -> dict[str, int]:
    """How wide each amount column's widest figure is, as formatted now (none without rows)."""
    if not rows:
        return {}
    widest = {}
    for column in shown:
        if column.key not in columns.AMOUNT_COLUMNS:
            continue
        signed = column.key in columns.SIGNED_COLUMNS
        # The widest text is the largest or the most negative amount: two formats, not one per row.
        values = [column.sort_value(r) for r in rows]
        extremes = (max(values), min(values))
        width = max(len(format_amount(v, places, signed=signed)) for v in extremes)  # type: ignore[arg-type]
        widest[column.key] = width + (column.key == "upnl")  # room for the ≈ of a figure computed from marks
    return widest
