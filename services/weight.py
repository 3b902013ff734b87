"""Request weight: the exchange's fixed windows, this app's own spending in them, and its share of the IP's limit.

One place for each fact (STYLE.md): when a window ends (:func:`window_of`, :func:`window_end_ms`), what this client
itself spent (:class:`WeightLedger`), and how much of the IP's limit it may use (:class:`WeightBudget`). The usage
fraction and "other programs" live on :class:`~services.models.WeightReading`, which every reply carries.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger("balance_tui.weight")

MINUTE_MS = 60_000
DEFAULT_LIMIT = 2400

#: Request weight of each method this client sends, as documented (PROTOCOL.md §4–§6); the handshake costs 5. The v1
#: account methods are contested: the change log raised them to 10, their pages say 5. The higher is assumed until
#: the exchange's own counts say otherwise (:class:`WeightTable`): erring toward spending less of a shared budget.
DOCUMENTED_WEIGHTS: Mapping[str, int] = {
    "account.balance": 10,
    "v2/account.balance": 5,
    "account.status": 10,
    "v2/account.status": 5,
    "v2/account.position": 5,
    "session.logon": 2,
    "session.status": 2,
    "session.logout": 2,
    "userDataStream.start": 1,
    "userDataStream.ping": 1,
    "userDataStream.stop": 1,
}
HANDSHAKE_WEIGHT = 5


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
    budget of 120 came to be 123 on the exchange's count). Each booking is kept, so that what a request really cost,
    once the exchange's counts tell, corrects it (:meth:`correct`), and a reply's reading counts only the requests
    sent up to its own (:meth:`own_upto`).
    """

    def __init__(self, window_ms: int = MINUTE_MS) -> None:
        self.window_ms = window_ms
        # window → booking → weight, each window's bookings in the order they were made (numbers only grow)
        self._spent: dict[int, dict[int, int]] = {}
        self._totals: dict[int, int] = {}  # window → the sum of its bookings, kept as they are made and corrected
        self._windows: dict[int, range] = {}  # booking → the windows it is booked in
        self._next = 0

    def book(self, server_time_ms: int, weight: int, *, uncertainty_ms: int = 0) -> int:
        """Book a request about to be sent; returns the booking, for :meth:`correct` and :meth:`own_upto`."""
        first = window_of(server_time_ms - uncertainty_ms, self.window_ms)
        last = window_of(server_time_ms + uncertainty_ms, self.window_ms)
        booking = self._next
        self._next += 1
        for window in range(first, last + 1):
            self._spent.setdefault(window, {})[booking] = weight
            self._totals[window] = self._totals.get(window, 0) + weight
        self._windows[booking] = range(first, last + 1)
        for old in [w for w in self._spent if w < first - 1]:
            self._totals.pop(old, None)
            for gone in self._spent.pop(old):
                self._windows.pop(gone, None)
        return booking

    def correct(self, booking: int, weight: int) -> None:
        """The request booked as ``booking`` cost ``weight`` as the exchange counts it."""
        for window in self._windows.get(booking, ()):
            spent = self._spent.get(window, {})
            if booking in spent:
                self._totals[window] += weight - spent[booking]
                spent[booking] = weight

    def own(self, server_time_ms: int) -> int:
        """Weight booked in the window holding ``server_time_ms``."""
        return self._totals.get(window_of(server_time_ms, self.window_ms), 0)

    def own_upto(self, booking: int, server_time_ms: int) -> int:
        """Weight booked in that window by ``booking`` and the requests sent before it (not those sent after, which
        the exchange had not counted when it answered this one).

        The window's total less the bookings made after this one: those are the requests still in flight, a few,
        so a reply costs the same however many requests the window already holds (a sum over the whole window
        grew with each: a desk's or a benchmark's thousands of calls a minute made it quadratic)."""
        window = window_of(server_time_ms, self.window_ms)
        total = self._totals.get(window, 0)
        for number, weight in reversed(self._spent.get(window, {}).items()):
            if number <= booking:
                break
            total -= weight
        return total

    def window_end_ms(self, server_time_ms: int) -> int:
        return window_end_ms(server_time_ms, self.window_ms)


class WeightTable:
    """What each method costs: learned from the exchange's own counts, the documented figure until then.

    Two replies in a row on one connection, in one window, differ by what the later request cost plus whatever else
    was spent on the IP in between: the smallest difference seen is the method's weight (PROTOCOL.md §4: never trust a
    weight table alone).
    """

    def __init__(self, documented: Mapping[str, int] = DOCUMENTED_WEIGHTS, default: int = 1) -> None:
        self._documented = dict(documented)
        self._default = default
        self.learned: dict[str, int] = {}

    def of(self, method: str) -> int:
        return self.learned.get(method, self._documented.get(method, self._default))

    def observe(self, method: str, difference: int) -> bool:
        """A count difference one request of ``method`` made; returns whether the method's weight changed.

        A difference past twice the documented weight is taken for other programs' spending, not the method's (the
        contested figures differ by two: 5 and 10); below one, for a count that did not move with the request."""
        documented = self._documented.get(method, self._default)
        if not 1 <= difference <= 2 * max(documented, 5):
            return False
        known = self.learned.get(method)
        if known is not None and known <= difference:
            return False
        before = self.of(method)
        self.learned[method] = difference
        if difference != before:
            log.info("weight of %s: %d as the exchange counts it (%d assumed before)", method, difference, before)
        return difference != before


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
