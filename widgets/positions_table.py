"""The positions view: every position of the account, across margin assets, nearest liquidation first."""

from __future__ import annotations

from rich.console import JustifyMethod
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from services.formatting import MASK, format_amount, format_exact
from services.positions import LivePosition
from services.risktext import adl_gauge, by_distance, distance_text, is_near, is_past, price_text
from widgets.styles import Tones

#: (key, header, shown on a narrow terminal too)
COLUMNS = (
    ("symbol", "Symbol", True),
    ("side", "Side", True),
    ("size", "Size", True),
    ("entry", "Entry", False),
    ("break_even", "Break-even", False),
    ("mark", "Mark", True),
    ("upnl", "uPnL", True),
    ("notional", "Notional", False),
    ("liquidation", "Liq. price", True),
    ("distance", "Distance", True),
    ("adl", "ADL", True),
)
RIGHT = {"size", "entry", "break_even", "mark", "upnl", "notional", "liquidation", "distance"}


class PositionsTable(DataTable[Text]):
    """Bound from the screen (``positions``, ``compact``); drawn while shown, nearest liquidation first. Cells are
    written in place while the order holds (the cursor stays where the trader put it)."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {
        "positions-table--gain",
        "positions-table--loss",
        "positions-table--danger",
        "positions-table--warn",
        "positions-table--muted",
    }

    DEFAULT_CSS = """
    PositionsTable { height: 1fr; display: none; }
    PositionsTable > .positions-table--gain { color: $text-success; }
    PositionsTable > .positions-table--loss { color: $text-error; }
    PositionsTable > .positions-table--danger { color: $text-error; text-style: bold reverse; }
    PositionsTable > .positions-table--warn { color: $text-warning; text-style: bold; }
    PositionsTable > .positions-table--muted { color: $text-muted; }
    """

    positions: reactive[tuple[LivePosition, ...]] = reactive((), repaint=False, init=False)
    compact: reactive[bool] = reactive(False, repaint=False, init=False)
    #: Privacy mode: size, entry, break-even, uPnL and notional masked (with entry and the mark, a side would say
    #: whether the position gains); the mark, the liquidation price, the distance and ADL stay.
    private: reactive[bool] = reactive(False, repaint=False, init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._tones = Tones(self)
        self._order: list[str] = []
        self._built_compact: bool | None = None

    def on_mount(self) -> None:
        self.draw()

    def watch_positions(self) -> None:
        if self.display:
            self.draw()

    def watch_compact(self) -> None:
        if self.display:
            self.draw()

    def watch_private(self) -> None:
        if self.display:
            self.draw()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._tones.clear()

    def draw(self) -> None:
        """Bring the table to the positions: the columns for the width, the rows in order of distance."""
        shown = [(key, header) for key, header, narrow in COLUMNS if narrow or not self.compact]
        if self._built_compact != self.compact:
            self.clear(columns=True)
            for key, header in shown:
                self.add_column(Text(header, justify="right" if key in RIGHT else "left"), key=key)
            self._built_compact, self._order = self.compact, []
        ordered = by_distance(self.positions)
        order = [f"{p.symbol}/{p.side}" for p in ordered]
        if order != self._order:
            selected = self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None
            self.clear()
            for key, p in zip(order, ordered, strict=True):
                self.add_row(*(self._cell(column, p) for column, _ in shown), key=key)
            self._order = order
            if selected in order:
                self.move_cursor(row=order.index(selected), animate=False)
            return
        for key, p in zip(order, ordered, strict=True):
            for column, _ in shown:
                cell = self._cell(column, p)
                if self.get_cell(key, column) != cell:
                    self.update_cell(key, column, cell)

    def _cell(self, column: str, p: LivePosition) -> Text:
        tone = self._tones
        approx = "≈" if p.source == "mark" else ""
        justify: JustifyMethod = "right" if column in RIGHT else "left"
        if column == "symbol":
            return Text(p.symbol + (" (iso)" if p.isolated else ""))
        if column == "side":
            side = p.side if p.side != "BOTH" else ("LONG" if p.amount > 0 else "SHORT")
            lever = f" {p.leverage}×" if p.leverage else ""
            return Text(side + lever)
        private = self.private
        if column == "size":
            return Text(format_exact(p.amount, private=private), justify=justify)
        if column in ("entry", "break_even") and private:
            return Text(MASK, justify=justify)
        if column in ("entry", "break_even", "mark", "liquidation"):
            value = {"entry": p.entry_price, "break_even": p.break_even_price, "mark": p.mark_price,
                     "liquidation": p.liquidation_price}[column]  # fmt: skip
            text = price_text(value) if column != "liquidation" or value is not None else "…"
            return Text(text, justify=justify)
        if column == "upnl" and private:
            return Text(MASK, justify=justify)  # no tone: a gain's colour is its sign
        if column == "notional" and private:
            return Text(MASK, justify=justify)
        if column == "upnl":
            style = tone("positions-table--gain") if p.unrealized > 0 else tone("positions-table--loss") if (
                p.unrealized < 0) else ""  # fmt: skip
            return Text(approx + format_amount(p.unrealized, 2, signed=True), style=style, justify=justify)
        if column == "notional":
            return Text(approx + format_amount(p.notional, 2), justify=justify)
        if column == "distance":
            if is_past(p):
                style = tone("positions-table--danger")
            elif is_near(p):
                style = tone("positions-table--warn")
            else:
                style = tone("positions-table--muted") if p.liq_distance is None else ""
            return Text(distance_text(p), style=style, justify=justify)
        adl = p.adl
        style = tone("positions-table--danger") if adl == 4 else tone("positions-table--warn") if adl == 3 else ""
        return Text(adl_gauge(adl), style=style)
