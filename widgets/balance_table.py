"""The per-asset balance table: rows keyed by asset, patched in place, sorted by the raw Decimal."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from services.formatting import MASK, amount_width
from services.models import AssetBalance
from widgets import columns, widths
from widgets.patched_table import PatchedDataTable
from widgets.styles import Tones

FULL_PLACES = 8
COMPACT_PLACES = 4


class BalanceTable(PatchedDataTable[Text]):
    """Balances by asset, bound from the screen (``balances``, ``now_ms``, ``ages_at``, ``alerted``, ``compact``);
    it writes only the cells whose text changed. Sorting and hiding zeros are the user's commands (methods)."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {
        "balance-table--gain",
        "balance-table--loss",
        "balance-table--muted",
        "balance-table--alert",
    }

    DEFAULT_CSS = """
    BalanceTable { height: 1fr; }
    BalanceTable > .balance-table--gain { color: $text-success; }
    BalanceTable > .balance-table--loss { color: $text-error; }
    BalanceTable > .balance-table--muted { color: $text-muted; }
    BalanceTable > .balance-table--alert { color: $text-error; text-style: bold reverse; }
    """

    #: The numbers shown are not current (no refresh for a while, or the link is down): bound from the screen.
    stale: reactive[bool] = reactive(False, repaint=False)
    #: The rows, by asset: reconciled on every change (add new assets, patch changed cells, remove assets gone).
    balances: reactive[Mapping[str, AssetBalance]] = reactive(dict, repaint=False, init=False, always_update=True)
    #: Now, for the ages of the rows drawn from here on.
    now_ms: reactive[int] = reactive(0, repaint=False, init=False)
    #: When the Age cells are to read: set, and every age on screen is drawn again for that time.
    ages_at: reactive[int] = reactive(0, repaint=False, init=False)
    #: (asset, column) of the figures alerts fired on: highlighted by sign and style, not colour alone.
    alerted: reactive[frozenset[tuple[str, str]]] = reactive(frozenset, repaint=False, init=False)
    #: Narrow terminals drop the cross-wallet and max-withdraw columns and show 4 decimals.
    compact: reactive[bool] = reactive(False, repaint=False, init=False)
    #: Privacy mode: every amount one fixed mask, no tone, and the columns as wide as their headers say (a width
    #: planned from the figures would tell their size).
    private: reactive[bool] = reactive(False, repaint=False, init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._built_compact = False  # what the columns on screen were built for
        self.sort_key = "asset"
        self.sort_reverse = False
        self.hide_zero = False
        self._rows: dict[str, AssetBalance] = {}
        self._cells: dict[tuple[str, str], columns.SortableText] = {}
        self._shown: dict[str, tuple[object, ...]] = {}  # per row, the figures its cells were drawn from
        self._tones = Tones(self)
        self._now_ms = 0
        self._columns_shown: tuple[columns.Column, ...] = ()
        self._widths: dict[str, int] = {}
        self._alerted: set[tuple[str, str]] = set()  # (asset, column) of the figures an alert fired on
        self._sorted_by: dict[str, columns.SortValue] = {}  # each row's value in the sort column, as last sorted
        self._inputs: dict[tuple[str, str], object] = {}  # per cell, the figures it was last drawn from
        self._column_by_key: dict[str, columns.Column] = {}
        self._drawn: dict[str, AssetBalance] = {}  # the row object each row was last drawn from
        self._account_available = False  # a row shown reports the account's available (Multi-Assets mode)

    def on_mount(self) -> None:
        self._build_columns()
        if self._rows:
            self._reconcile()

    def watch_stale(self, stale: bool) -> None:
        # Only on a change: a border title set to the same text still repaints the whole table.
        self.set_class(stale, "-stale")
        self.border_title = "STALE — last good numbers, not current" if stale else None
        # The frame takes a column each side without resizing the widget (no Resize event): plan the widths again
        # once it is laid out, or the last column is cut at the edge.
        self.call_after_refresh(self._replan)

    # -- columns ----------------------------------------------------------------------------------------------

    @property
    def places(self) -> int:
        return COMPACT_PLACES if self.compact else FULL_PLACES

    def watch_compact(self, compact: bool) -> None:
        if compact != self._built_compact and self._columns_shown:
            self._rebuild()

    def watch_private(self) -> None:
        if self._columns_shown:
            self._rebuild()  # every amount cell drawn again, and the widths planned for the mask

    def _rebuild(self) -> None:
        keep = self.selected_asset
        self.clear(columns=True)
        self.forget_renders()
        self._cells.clear()
        self._shown.clear()
        self._drawn.clear()
        self._sorted_by.clear()
        self._build_columns()
        self._reconcile()
        self._restore_cursor(keep)

    def planned_widths(self) -> dict[str, int]:
        """Each column's width for the rows on screen and the table's width now (:func:`widgets.widths.plan`)."""
        shown = tuple(c for c in columns.COLUMNS if c.compact or not self.compact)
        headers = {c.key: self._header(c) for c in shown}
        rows = [self._rows[a] for a in self._visible_assets()] if not self.private else []
        return widths.plan(shown, headers, rows, self.size.width, compact=self.compact, places=self.places)

    def _build_columns(self) -> None:
        self._built_compact = self.compact
        self._columns_shown = tuple(c for c in columns.COLUMNS if c.compact or not self.compact)
        self._column_by_key = {c.key: c for c in self._columns_shown}
        self._inputs.clear()
        self._widths = self.planned_widths()
        for column in self._columns_shown:
            self.add_column(self._label(column), width=self._widths[column.key], key=column.key)

    def on_resize(self) -> None:
        self._replan()

    def _replan(self) -> None:
        if self._columns_shown and self.planned_widths() != self._widths:
            self._rebuild()

    def _sort_mark(self, key: str) -> str:
        if key != self.sort_key:
            return ""
        return " ▼" if self.sort_reverse else " ▲"

    def _relabel(self) -> None:
        for column in self._columns_shown:
            self.columns[ColumnKey(column.key)].label = self._label(column)
        self.bump_header()
        self.refresh()

    def _header(self, column: columns.Column) -> str:
        """A column's header, without its sort arrow: narrower on a narrow terminal; Available says whose."""
        if column.key == "available" and self._account_available:
            return columns.ACCOUNT_AVAILABLE[1] if self.compact else columns.ACCOUNT_AVAILABLE[0]
        return column.short_label if self.compact and column.short_label else column.label

    def _label(self, column: columns.Column) -> Text:
        label = self._header(column) + self._sort_mark(column.key)
        return Text(label, justify="left" if column.key in ("asset", "margin") else "right")

    # -- data -------------------------------------------------------------------------------------------------

    @property
    def selected_asset(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return row_key.value

    def watch_balances(self, balances: Mapping[str, AssetBalance]) -> None:
        self._rows = dict(balances)
        if self._columns_shown:  # before the columns are built (mount), on_mount reconciles
            self._reconcile()

    def watch_now_ms(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def next_change_ms(self, now_ms: int) -> int | None:
        """When the next Age cell on screen will read differently, in ms from now (None: no ages shown)."""
        times = [self._rows[a].update_time_ms for a in self._visible_assets() if self._rows[a].update_time_ms]
        return min((columns.next_age_change_ms(now_ms - t) for t in times), default=None)

    def watch_ages_at(self, now_ms: int) -> None:
        """Time moved: only the Age cells can change."""
        self._now_ms = now_ms
        if not self._columns_shown:
            return
        for asset in list(self._visible_assets()):
            self._write(asset, "age")
        self.repaint_patched()

    def set_hide_zero(self, hide: bool) -> None:
        self.hide_zero = hide
        self._reconcile()

    def next_sort_key(self) -> str:
        """The column after the current sort column, among those on screen."""
        shown = [column.key for column in self._columns_shown] or list(columns.SORTABLE)
        if self.sort_key not in shown:
            return shown[0]
        return shown[(shown.index(self.sort_key) + 1) % len(shown)]

    def sort_by(self, key: str, *, reverse: bool | None = None) -> None:
        self.sort_key = key
        self._sorted_by.clear()
        self.sort_reverse = (
            (key in ("wallet", "cross", "upnl", "available", "max_withdraw")) if reverse is None else reverse
        )
        self._relabel()
        self._apply_sort()

    def _visible_assets(self) -> list[str]:
        return [asset for asset, row in self._rows.items() if not (self.hide_zero and row.is_zero)]

    def _needs_new_widths(self, changed: list[str], rows_moved: bool) -> bool:
        """Whether the columns' widths must be planned again: rows came or went, or a changed amount no longer fits.

        Planning looks at every row; this looks only at the rows that changed, so a refresh's cost follows the
        changes. Columns do not shrink while the rows stay the same: a steady layout is worth a little width.
        """
        if rows_moved:
            return True
        if self.private:
            return False  # the mask is as wide whatever the figures
        amounts = [c for c in self._columns_shown if c.key in columns.AMOUNT_COLUMNS]
        for asset in changed:
            row = self._rows[asset]
            for column in amounts:
                value = column.sort_value(row)
                assert isinstance(value, Decimal)
                signed = column.key in columns.SIGNED_COLUMNS
                if amount_width(value, self.places, signed=signed) + signed > self._widths[column.key]:
                    return True
        return False

    def _reconcile(self) -> None:
        if not self._columns_shown:
            return
        visible = self._visible_assets()
        account = any(self._rows[a].available_scope == "account" for a in visible)
        if account != self._account_available:
            self._account_available = account
            self._relabel()
            if self.planned_widths() != self._widths:
                self._rebuild()  # the header's width may have changed with its words
                return
        present = {str(key.value) for key in self.rows}
        # A row object the table drew already is unchanged (snapshots are immutable and share their unchanged
        # rows): only the others are looked at, so a refresh of 2,000 rows costs what its changed rows cost.
        changed_rows = [
            a
            for a in visible
            if self._drawn.get(a) is not self._rows[a] and self._shown.get(a) != columns.display_key(self._rows[a])
        ]
        rows_moved = len(visible) != len(present) or any(a not in present for a in changed_rows)
        if rows_moved:
            rows_moved = set(visible) != present
        if self._needs_new_widths(changed_rows, rows_moved) and self.planned_widths() != self._widths:
            self._rebuild()  # a wider amount arrived (or rows came or went): rare, the only time columns are redrawn
            return
        keep = self.selected_asset
        sort_column = next(c for c in columns.COLUMNS if c.key == self.sort_key)
        resort = False
        for asset in list(present - set(visible)) if rows_moved else ():
            self.remove_row(asset)
            self._shown.pop(asset, None)
            self._drawn.pop(asset, None)
            for column in self._columns_shown:
                self._cells.pop((asset, column.key), None)
                self._inputs.pop((asset, column.key), None)
        for asset in visible if rows_moved else changed_rows:
            row = self._rows[asset]
            if asset not in present:
                cells = [self._cell(asset, column) for column in self._columns_shown]
                self.add_row(*cells, key=asset)
                for column, cell in zip(self._columns_shown, cells, strict=True):
                    self._cells[(asset, column.key)] = cell
                resort = True
            elif asset in changed_rows or self._shown.get(asset) != columns.display_key(row):
                # Only a row whose figures changed is formatted again: the cost follows the changes, not the rows.
                for column in self._columns_shown:
                    self._write(asset, column.key)
                # Sorting again only if the sort column's value moved: a 2,000-row sort is most of a refresh.
                before = self._sorted_by.get(asset)
                resort = resort or before is None or before != sort_column.sort_value(row)
            self._shown[asset] = columns.display_key(row)
            self._drawn[asset] = row
            self._sorted_by[asset] = sort_column.sort_value(row)
        if resort:
            self._apply_sort()
        self.repaint_patched()
        self._restore_cursor(keep)

    def _cell(self, asset: str, column: columns.Column) -> columns.SortableText:
        row = self._rows[asset]
        if self.private and column.key in columns.AMOUNT_COLUMNS:
            cell = columns.Cell(MASK)  # no tone either: a gain's colour is its sign
        else:
            cell = column.cell(row, self.places, self._now_ms, self._widths[column.key])
        tone = "alert" if (asset, column.key) in self._alerted else cell.tone
        text = cell.text
        if column.key == "asset" and tone == "alert":
            text = columns.cut_name("⚑" + asset, self._widths[column.key])  # a sign, not colour alone; the name kept
        return columns.SortableText(
            text, sort_value=column.sort_value(row), style=self._tone_style(tone), justify=cell.justify
        )

    def watch_alerted(self, alerted: frozenset[tuple[str, str]]) -> None:
        """Highlight the figures alerts fired on (and the asset's name), by sign and style, not colour alone."""
        cells = set(alerted) | {(asset, "asset") for asset, _ in alerted}
        if cells == self._alerted:
            return
        touched = cells ^ self._alerted
        self._alerted = cells
        for asset, key in touched:
            if asset in self._rows and any(c.key == key for c in self._columns_shown) and RowKey(asset) in self.rows:
                self._write(asset, key)
        self.repaint_patched()

    def _tone_style(self, tone: str) -> Style | str:
        return self._tones(f"balance-table--{tone}") if tone else ""

    def notify_style_update(self) -> None:
        # A new theme: tones resolve again and every row is drawn again with them (once, after the update).
        self._tones.clear()
        self._shown.clear()
        self._inputs.clear()
        self._drawn.clear()
        self.forget_renders()
        super().notify_style_update()
        if self.is_mounted:
            self.call_later(self._reconcile)

    def _write(self, asset: str, key: str) -> None:
        column = self._column_by_key[key]
        row = self._rows[asset]
        # What the cell is drawn from: when it has not moved, the cell is neither formatted nor written.
        inputs: object = (column.sort_value(row), row.upnl_source, (asset, key) in self._alerted)
        if key == "age":
            inputs = (inputs, self._now_ms // 1000)
        if self._inputs.get((asset, key)) == inputs and (asset, key) in self._cells:
            return
        self._inputs[(asset, key)] = inputs
        cell = self._cell(asset, column)
        old = self._cells.get((asset, key))
        if old is not None and old.plain == cell.plain and old.style == cell.style:
            # update_cell repaints the table: skip it when what shows is the same. The value behind it may have moved
            # past the digits shown, and the sort reads that value.
            old.sort_value = cell.sort_value
            return
        self._cells[(asset, key)] = cell
        self.patch_cell(asset, key, cell)

    def _apply_sort(self) -> None:
        if not self.row_count:
            return
        keep = self.selected_asset

        def value(
            cells: tuple[columns.SortableText, columns.SortableText],
        ) -> tuple[columns.SortValue, columns.SortValue]:
            # The sort column's raw value, then the asset's name (the asset cell's own value, not its text): ties
            # and equal figures keep one order.
            by, asset = cells
            return by.sort_value, asset.sort_value

        self.sort(self.sort_key, "asset", key=value, reverse=self.sort_reverse)
        self._restore_cursor(keep)

    def _restore_cursor(self, asset: str | None) -> None:
        if asset is None or RowKey(asset) not in self.rows:
            return
        index = self.get_row_index(asset)
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False, scroll=False)
