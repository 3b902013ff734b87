"""What the client's requests cost: booked before each goes out, corrected to what the exchange's counts show.

Two replies in a row on one connection, in one window, differ by what the later request cost (plus whatever else
the IP spent between): the smallest plausible difference is what a method costs (:class:`WeightTable`). Each reply's
reading puts this client's own spending beside the IP's count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.client.link import Link, Pending
from services.client.replies import request_weight
from services.models import WeightReading
from services.weight import WeightLedger, WeightTable, window_of


class Meter:
    """The client's weight ledger and what it has learned each method costs."""

    def __init__(self) -> None:
        self.ledger = WeightLedger()
        self.weights = WeightTable()

    def book(self, now_ms: int, weight: int, *, uncertainty_ms: int) -> int:
        """Book weight about to be spent; returns the booking (kept, to be corrected)."""
        return self.ledger.book(now_ms, weight, uncertainty_ms=uncertainty_ms)

    def own(self, now_ms: int) -> int:
        return self.ledger.own(now_ms)

    def window_end_ms(self, now_ms: int) -> int:
        return self.ledger.window_end_ms(now_ms)

    def learn(self, link: Link, entry: Pending, message: Mapping[str, Any], now_ms: int, slack_ms: int) -> None:
        """What the request cost, from this reply's count beside the last one's on this connection; its booking
        corrected to what the method is now known to cost. Called in the order the exchange answered."""
        limit = entry.limit = request_weight(message)
        if limit is None:
            return
        window = window_of(now_ms - slack_ms, limit.window_ms)
        sure = window == window_of(now_ms + slack_ms, limit.window_ms)  # not within the clock's doubt of an edge
        last, link.last_count = link.last_count, (window, limit.count) if sure else None
        if sure and last is not None and last[0] == window and limit.count >= last[1]:
            self.weights.observe(entry.method, limit.count - last[1])
        cost = self.weights.of(entry.method)
        if cost != entry.booked:
            self.ledger.correct(entry.booking, cost)
            entry.booked = cost

    def reading(self, message: Mapping[str, Any], entry: Pending, now_ms: int) -> WeightReading | None:
        """The reply's weight reading, beside what this client had spent in the window up to this request (as the
        exchange's counts have corrected it). The reply's limit is the one the reader read (parsed once)."""
        limit = entry.limit if entry.limit is not None else request_weight(message)
        if limit is None:
            return None
        self.ledger.window_ms = limit.window_ms
        # The exchange's count includes this request; ours cannot exceed it (an edge of the window, a request
        # booked in both windows): "this app 13, IP 12" would be a meter contradicting itself.
        return WeightReading(
            count=limit.count,
            limit=limit.limit,
            own=min(self.ledger.own_upto(entry.booking, now_ms), limit.count),
            resets_at_ms=limit.resets_at_ms(now_ms),
            server_time_ms=now_ms,
        )
