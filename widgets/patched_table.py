"""Every use balance-tui makes of Textual's private DataTable internals, in one place (Textual is pinned exactly;
tests/test_textual_contract.py fails by name when a bump changes one).

DataTable keys its renders by a count that every write bumps and repaints the whole table on each ``update_cell``:
for a table whose figures move every second (marks), that is most of the dashboard's cost. :class:`PatchedDataTable`
keeps renders by the cell's own Text and repaints only the rows written.
"""

from __future__ import annotations

from typing import Self

from rich.segment import Segment
from rich.style import Style
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, RowKey

SegmentLines = list[list[Segment]]  # a rendered cell, as DataTable renders it
CELL_CACHE = 2_000  # rendered cells kept: a tall screen's rows × columns, with and without the cursor
LINE_CACHE = 400  # rendered lines and rows kept


class PatchedDataTable(DataTable[CellType]):
    """A DataTable whose cell writes repaint only their row, and whose renders are kept by the cell's value."""

    def __init__(self, *, id: str | None = None, cursor_type: str = "row", zebra_stripes: bool = True) -> None:
        self._patching = False  # inside update_cell: its repaint of the whole table is narrowed to the row
        self._patched: set[str] = set()  # rows written since the last repaint
        self._cell_lines: dict[tuple[object, ...], tuple[object, SegmentLines]] = {}  # renders by the cell's value
        super().__init__(id=id, cursor_type=cursor_type, zebra_stripes=zebra_stripes)  # type: ignore[arg-type]
        # DataTable keys its render caches by a count that every write bumps: renders of an older count are never
        # read again, so with marks writing each second its 10,000-cell cache fills with dead renders (+12 MB over
        # ten minutes, then flat). What can be hit is about a screenful: sized to that.
        self._cell_render_cache.maxsize = CELL_CACHE
        for cache in (self._row_render_cache, self._line_cache, self._row_renderable_cache):
            cache.maxsize = LINE_CACHE

    def patch_cell(self, row: str, column: str, value: CellType) -> None:
        """Write one cell, repainting (at the next :meth:`repaint_patched`) only its row."""
        self._patching = True
        try:
            self.update_cell(row, column, value)
        finally:
            self._patching = False
        self._patched.add(row)

    def forget_renders(self) -> None:
        self._cell_lines.clear()

    def bump_header(self) -> None:
        """The header is cached by DataTable's write count, like the rows: a new label needs a new count."""
        self._update_count += 1

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        # DataTable keys its cell renders by a count that every write bumps: when a mark moves one figure, all eight
        # cells of the row are rendered again (most of a mark tick's paint). Keyed here by the cell's own Text,
        # which a write replaces and nothing mutates, a written row costs the cells that changed.
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key, column_key = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
        value = self.get_cell(row_key, column_key)
        key = (
            row_index,
            column_index,
            base_style,
            width,
            cursor,
            hover,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        cached = self._cell_lines.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_lines[key] = (value, lines)
        if len(self._cell_lines) > CELL_CACHE:
            del self._cell_lines[next(iter(self._cell_lines))]
        return lines

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False) -> Self:
        if self._patching and not (regions or layout or recompose):
            # update_cell repaints the whole table, every visible cell of it rendered again: for a mark that moved
            # one uPnL that is the cost of the dashboard. The rows written are repainted alone (_repaint_patched).
            return self
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def repaint_patched(self) -> None:
        """Repaint the rows written since the last call: the lines they occupy on screen, and nothing else."""
        if not self._patched:
            return
        patched, self._patched = self._patched, set()
        header = self.header_height if self.show_header else 0
        top = self.scroll_offset.y
        width, height = self.size
        for asset in patched:
            if RowKey(asset) not in self.rows:
                continue
            y = header + self.get_row_index(asset) - top  # every row is one line tall
            if header <= y < height:
                self.refresh(Region(0, y, width, 1))
