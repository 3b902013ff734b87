"""A widget drawn line by line from rich Text: a change repaints the lines that read differently, and no more."""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from widgets.styles import Tones


class LineDrawn(Widget):
    """Subclasses say what their lines read (:meth:`text_lines`) and call :meth:`changed` when that may differ.

    A widget with ``render()`` is rendered whole on every change (its text converted, wrapped and styled again);
    a figure moving every second on a dashboard left open all day should cost the line it is on.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Text] = []  # what is on screen, one Text a line
        self._pending = False
        self.tone = Tones(self)  # a component class's colour, resolved once per theme

    def text_lines(self) -> list[Text]:
        """The lines at the widget's present size."""
        raise NotImplementedError

    def text(self) -> str:
        """The widget as it reads on screen."""
        return "\n".join(line.plain.rstrip() for line in self.text_lines())

    def changed(self) -> None:
        """What the lines are drawn from changed: lay them out once, after the handler that set it all."""
        if not self._pending and self.is_mounted:
            self._pending = True
            self.call_next(self._relayout)

    def on_mount(self) -> None:
        self.changed()

    def on_resize(self) -> None:
        self._lines = []  # a new width: every line is laid out again
        self.changed()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines = []  # a new theme: every tone resolves again
        self.tone.clear()
        self.changed()

    def _relayout(self) -> None:
        self._pending = False
        old, self._lines = self._lines, self.text_lines()
        if len(old) != len(self._lines):
            self.refresh()
            return
        width = self.size.width
        for y, (was, now) in enumerate(zip(old, self._lines, strict=True)):
            if was != now or was.style != now.style:  # Text's == compares the text and its spans, not its style
                self.refresh(Region(0, y, width, 1))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.visual_style.rich_style  # the widget's colours, under every span of the line
        if y >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[y]
        console = self.app.console
        segments = line.render(console)
        if line.style:  # a Text's own style is not in what render() yields (print() joins it in as a span)
            segments = Segment.apply_style(segments, console.get_style(line.style))
        return Strip(segments, line.cell_len).apply_style(base).crop_extend(0, width, base)
