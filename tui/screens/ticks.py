"""When the dashboard looks again: one timer, set for the next moment any text on screen will read differently (an
age crossing a step, a countdown's second while one is shown, numbers turning stale), rather than a tick every second.

An age, or the weight window's reset passing while the IP is quiet, may show up to ``SOFT_SLACK_MS`` late: while marks
move, the next snapshot (within a second) paints it in the same frame instead of a frame of its own. Turning stale, a
per-second countdown and a timed alert are never late.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.timer import Timer
from textual.widget import Widget

from services import freshness
from services.clock import SYSTEM_CLOCK, Clock
from services.models import AccountSnapshot, ConnectionStatus
from widgets.columns import next_age_change_ms
from widgets.status_line import UPDATED_STEP

MAX_QUIET_MS = 60_000  # even with nothing due, look once a minute
SOFT_SLACK_MS = 1_000  # how late an age step may show (marks paint every second: it goes with the next snapshot)
INJECTED_CLOCK_TICK = 0.25  # seconds: with a test's clock, time jumps without a timer's knowing
QUIET_STREAM = ("silent", "reconnecting", "connecting")


def next_change_ms(
    now: int,
    snapshot: AccountSnapshot | None,
    status: ConnectionStatus | None,
    *,
    soft: list[int],
    hard: list[int],
) -> tuple[int, int]:
    """In ms from now: the next change that must show on time (hard), and the next that may wait (soft), given
    what the widgets said of their own (``soft``, ``hard``)."""
    hard, soft = [MAX_QUIET_MS, *hard], [MAX_QUIET_MS, *soft]
    if snapshot is not None:
        soft.append(next_age_change_ms(now - snapshot.received_at_ms, UPDATED_STEP))  # "updated … ago"
        if status is not None:  # the moment the numbers turn stale
            for at in (freshness.stale_at_ms(status, snapshot), freshness.stale_alert_at_ms(status, snapshot)):
                if at > now:
                    hard.append(at - now)
    if status is not None and (status.retry_at_ms is not None or status.stream in QUIET_STREAM):
        hard.append(1000 - now % 1000)  # a countdown is shown, or the silent-stream alert is timing
    return max(1, min(hard)), max(1, min(soft))


class NextLook:
    """The one timer of a screen: :meth:`plan` moves it earlier when something new comes due, never later."""

    def __init__(self, owner: Widget, clock: Clock, look: Callable[[], None]) -> None:
        self.owner = owner
        self.clock = clock
        self.look = look
        self.soft_due_ms = 0  # when an age on screen (or the quiet window's reset) next reads differently
        self._timer: Timer | None = None
        self._due = 0.0  # when the timer set fires (time.monotonic(), as Textual's timers)

    def plan(self, now: int, hard: int, soft: int) -> None:
        self.soft_due_ms = now + soft
        delay = min(hard, soft + SOFT_SLACK_MS) / 1000
        if self.clock is not SYSTEM_CLOCK:
            delay = min(delay, INJECTED_CLOCK_TICK)  # an injected clock can jump at any time: look often
        due = time.monotonic() + max(0.05, delay)  # the timer's own clock
        if self._timer is not None:
            if due >= self._due - 0.001:
                return  # the timer set already comes first: it looks again then (a timer a snapshot is a task)
            self._timer.stop()
        self._due = due
        self._timer = self.owner.set_timer(max(0.05, delay), self._fired, name="next change")

    def _fired(self) -> None:
        self._timer = None
        self.look()
