"""The line under the totals: the nearest liquidation and today's change by reason."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from services.positions import LivePosition
from services.risktext import is_near, is_past, nearest, nearest_text, today_text
from services.today import TodayView
from widgets.lines import LineDrawn


class RiskLine(LineDrawn):
    """``nearest liquidation: BTCUSDT -7.2 %   today since 13:41 UTC: -12.34 USDT · funding -3.14 …``: one line
    where it fits, two where it does not; a position past its liquidation price turns the risk loud."""

    COMPONENT_CLASSES = {"risk-line--label", "risk-line--danger", "risk-line--warn"}

    DEFAULT_CSS = """
    RiskLine { height: 1; padding: 0 1; }  /* 2 on a terminal too narrow for both on one */
    RiskLine > .risk-line--label { color: $text-muted; }
    RiskLine > .risk-line--danger { color: $text-error; text-style: bold reverse; }
    RiskLine > .risk-line--warn { color: $text-warning; text-style: bold; }
    """

    positions: reactive[tuple[LivePosition, ...]] = reactive((), repaint=False)
    today: reactive[TodayView | None] = reactive(None, repaint=False)

    alerted: reactive[bool] = reactive(False, repaint=False)  # a rule on risk or today's figures holds
    private: reactive[bool] = reactive(False, repaint=False)  # privacy mode: today's figures masked (distances stay)

    watch_positions = watch_today = watch_private = LineDrawn.changed

    def watch_alerted(self, alerted: bool) -> None:
        self.set_class(alerted, "-alert")

    def text_lines(self) -> list[Text]:
        near = nearest(self.positions)
        risk = nearest_text(self.positions)
        if near is not None and is_past(near):
            style = self.tone("risk-line--danger")
        elif near is not None and is_near(near):
            style = self.tone("risk-line--warn")
        else:
            style = self.tone("risk-line--label")
        today = today_text(self.today, private=self.private)
        width = self.size.width or 10_000
        if len(risk) + 3 + len(today) <= width:
            lines = [Text.assemble((risk, style), "   ", today, no_wrap=True)]
        else:
            if len(today) > width:
                today = today_text(self.today, short=True, private=self.private)
            lines = [Text(risk, style=style, no_wrap=True), Text(today, no_wrap=True)]
        if self.styles.height is None or self.styles.height.value != len(lines):
            self.styles.height = len(lines)  # a layout only when the count of lines changes
        return lines
