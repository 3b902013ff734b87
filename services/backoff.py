"""Exponential backoff with jitter for reconnects: never more than about one attempt a second."""

from __future__ import annotations

import random


class Backoff:
    """Delays of about ``base``·2ⁿ seconds, capped, each drawn from the upper half of its range.

    Jitter keeps a fleet of clients that lost the same server from knocking at the same instant; the floor of
    ``base`` seconds keeps one client under the exchange's connect-attempt limits (PROTOCOL.md §1).
    """

    def __init__(self, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The wait before the next attempt, after one more failure."""
        self.attempt += 1
        ceiling: float = min(self.cap, self.base * 2.0 ** (self.attempt - 1))
        jittered: float = ceiling * self._rng.uniform(0.5, 1.0)
        return max(self.base, jittered)

    def reset(self) -> None:
        self.attempt = 0
