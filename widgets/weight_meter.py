"""The request-weight meter: the IP's usage this minute, ours beside other programs', and when it resets."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from services.models import WeightReading

WARN = 0.5
HIGH = 0.8


class WeightMeter(Widget):
    """``count / limit`` of the latest reply as a bar, with the seconds until the fixed window resets."""

    DEFAULT_CSS = """
    WeightMeter { height: 2; }
    WeightMeter.-warn { color: $text-warning; }
    WeightMeter.-high { color: $text-error; text-style: bold; }
    """

    reading: reactive[WeightReading | None] = reactive(None)
    # Time passing repaints the meter only when its text changes.
    server_now_ms: reactive[int] = reactive(0, repaint=False)
    budget: reactive[int | None] = reactive(None)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._resets_shown = ""

    def watch_server_now_ms(self) -> None:
        if self._resets_text() != self._resets_shown:
            self.refresh()

    def _resets_text(self) -> str:
        reading = self.reading
        if reading is None:
            return ""
        if self.server_now_ms >= reading.resets_at_ms:
            return "window reset (count of the last minute)"
        if self.coarse:
            # While there is room, when the window resets is all a glance needs: a clock time that stands still,
            # not a countdown repainting the meter every few seconds. The seconds count down when the IP is busy.
            return f"resets at {datetime.fromtimestamp(reading.resets_at_ms / 1000):%H:%M}"
        left = max(0, (reading.resets_at_ms - self.server_now_ms + 999) // 1000)
        return f"resets in {left} s"

    @property
    def coarse(self) -> bool:
        """The IP is not busy: the meter shows when the window resets, not a countdown."""
        reading = self.reading
        return reading is not None and bool(reading.limit) and reading.count < WARN * reading.limit

    def next_change_ms(self) -> int | None:
        """When the reset countdown will read differently, in ms from now (None: nothing counts down)."""
        reading = self.reading
        if reading is None or self.server_now_ms >= reading.resets_at_ms:
            return None
        left = reading.resets_at_ms - self.server_now_ms
        return left if self.coarse else (left - 1) % 1_000 + 1

    def watch_reading(self, reading: WeightReading | None) -> None:
        fraction = reading.fraction if reading is not None else 0
        self.set_class(WARN <= fraction < HIGH, "-warn")
        self.set_class(fraction >= HIGH, "-high")

    def render(self) -> Text:
        reading = self.reading
        if reading is None:
            return Text("Weight  no reading yet", style="dim")
        expired = self.server_now_ms >= reading.resets_at_ms
        percent = reading.count * 100 // reading.limit if reading.limit else 0
        label = f"{reading.count:,} / {reading.limit:,}  {percent:>3} %"
        resets = self._resets_shown = self._resets_text()
        width = max(10, self.size.width - len(label) - len(resets) - 12)
        filled = min(width, reading.count * width // reading.limit) if reading.limit else 0
        bar = "█" * filled + "░" * (width - filled)
        text = Text.assemble("Weight  ", (bar, "" if not expired else "dim"), f"  {label}  ", (resets, "dim"))
        budget = f" · budget {self.budget:,}/min" if self.budget is not None else ""
        text.append(
            f"\n        this app {reading.own:,} · other programs on this IP {reading.others:,}{budget}",
            style="dim",
        )
        return text
