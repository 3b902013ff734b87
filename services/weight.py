"""Request weight: the exchange's fixed windows, this app's own spending in them, and its share of the IP's limit.

One place for each fact (STYLE.md): when a window ends (:func:`window_of`, :func:`window_end_ms`), what this client
itself spent (:class:`WeightLedger`), and how much of the IP's limit it may use (:class:`WeightBudget`). The usage
fraction and "other programs" live on :class:`~services.models.WeightReading`, which every reply carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MINUTE_MS = 60_000
DEFAULT_LIMIT = 2400


def window_of(server_time_ms: int, window_ms: int = MINUTE_MS) -> int:
    """The index of the fixed window a moment of the exchange's time falls in (windows start at whole intervals)."""
    return server_time_ms // window_ms


def window_end_ms(server_time_ms: int, window_ms: int = MINUTE_MS) -> int:
    """When the fixed window holding ``server_time_ms`` ends, in the exchange's time."""
    return (window_of(server_time_ms, window_ms) + 1) * window_ms


class WeightLedger:
    """This client's own request weight per fixed window, booked when a request is *sent*, not when it is answered.

    The client knows the exchange's time only to within half a round trip of its clock probe. A request sent that
    close to a window's edge may be counted by the exchange in either window, so it is booked in both: the budget
    then errs on the side of spending less, never more (a request booked only on our side of the edge is how a
    budget of 120 came to be 123 on the exchange's count).
    """

    def __init__(self, window_ms: int = MINUTE_MS) -> None:
        self.window_ms = window_ms
        self._spent: dict[int, int] = {}

    def book(self, server_time_ms: int, weight: int, *, uncertainty_ms: int = 0) -> None:
        first = window_of(server_time_ms - uncertainty_ms, self.window_ms)
        last = window_of(server_time_ms + uncertainty_ms, self.window_ms)
        for window in range(first, last + 1):
            self._spent[window] = self._spent.get(window, 0) + weight
        for old in [w for w in self._spent if w < first - 1]:
            del self._spent[old]

    def own(self, server_time_ms: int) -> int:
        """Weight booked in the window holding ``server_time_ms``."""
        return self._spent.get(window_of(server_time_ms, self.window_ms), 0)

    def window_end_ms(self, server_time_ms: int) -> int:
        return window_end_ms(server_time_ms, self.window_ms)


@dataclass(frozen=True)
class WeightBudget:
    """How much of the IP's request weight this app may use, and when to hold back for other programs."""

    share_streaming: float = 0.05  # of the IP's limit per minute, with the push stream trusted
    share_polling: float = 0.10  # without it
    slow_above: float = 0.70  # the IP's count (everyone's) past this fraction: poll four times less often
    slow_factor: float = 4.0

    def allowance(self, limit: int, *, streaming: bool) -> int:
        return math.floor(limit * (self.share_streaming if streaming else self.share_polling))

    def busy(self, count: int, limit: int) -> bool:
        """Other programs (and we) have used so much of the IP's limit that polling should slow down."""
        return bool(limit) and count >= self.slow_above * limit
