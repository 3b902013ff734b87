"""Theme colours for text drawn inside a widget's own render: the colour alone, blended for the current theme."""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def tone(widget: Widget, component: str) -> Style:
    """The foreground of a component class, resolved against the widget's background (theme colours such as
    ``$text-muted`` carry alpha, which a partial style would leave unblended: white on a light theme), without the
    background itself, so a highlighted row keeps its own."""
    full = widget.get_component_rich_style(component)
    return Style(color=full.color, bold=full.bold)


class Tones:
    """A widget's tones, resolved once each: resolving walks the CSS. Clear it when styles change (a new theme)."""

    def __init__(self, widget: Widget) -> None:
        self._widget = widget
        self._styles: dict[str, Style] = {}

    def __call__(self, component: str) -> Style:
        style = self._styles.get(component)
        if style is None:
            style = self._styles[component] = tone(self._widget, component)
        return style

    def clear(self) -> None:
        self._styles.clear()
