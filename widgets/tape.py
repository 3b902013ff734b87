"""The tape: the latest balance changes and why, and a sparkline of the margin balance over the session or day."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from services.formatting import format_amount
from services.models import Change


class ChangeTape(Widget):
    """The latest changes, newest first: time, asset, delta with its sign, reason, symbol."""

    DEFAULT_CSS = """
    ChangeTape { height: 1fr; }
    """

    changes: reactive[tuple[Change, ...]] = reactive(())
    note: reactive[str] = reactive("")  # e.g. "history off: …"
    private: reactive[bool] = reactive(False)  # privacy mode: each delta masked (the time, asset and reason stay)

    def render(self) -> RenderableType:
        if not self.changes:
            return Text(self.note or "No balance changes yet this session.", style="dim")
        table = Table.grid(padding=(0, 2))
        for justify in ("left", "left", "right", "left", "left"):
            table.add_column(justify=justify, no_wrap=True)
        for change in reversed(self.changes[-max(1, self.size.height) :]):
            table.add_row(
                datetime.fromtimestamp(change.at_ms / 1000).strftime("%H:%M:%S"),
                change.asset,
                format_amount(change.delta, 8, signed=True, private=self.private)
                if change.delta is not None
                else "— (first seen)",
                change.reason + ("" if change.source == "push" else " (found by a poll)"),
                change.symbol or "",
            )
        return Group(table, Text(self.note, style="dim")) if self.note else table


class HistoryPanel(Vertical):
    """The sparkline of the margin balance above the tape. Hidden until asked for (``t``)."""

    DEFAULT_CSS = """
    HistoryPanel { height: 9; display: none; }
    HistoryPanel Sparkline { height: 2; margin: 0 1; }
    HistoryPanel #history-title { height: 1; padding: 0 1; color: $text-muted; }
    HistoryPanel ChangeTape { padding: 0 1; }
    """

    series: reactive[tuple[float, ...]] = reactive(())  # the margin balance's shape (a drawing, not a figure)
    changes: reactive[tuple[Change, ...]] = reactive(())
    note: reactive[str] = reactive("")
    #: Privacy mode: the tape's deltas masked. The sparkline stays: scaled to its own least and most, it draws the
    #: shape of the margin balance, neither its size nor its sign.
    private: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        yield Static("Margin balance (session, last 24 h) · changes, newest first", id="history-title")
        yield Sparkline([], id="margin-sparkline").data_bind(data=HistoryPanel.series)
        yield ChangeTape(id="tape").data_bind(HistoryPanel.changes, HistoryPanel.note, HistoryPanel.private)
