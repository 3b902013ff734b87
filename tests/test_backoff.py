"""Backoff: grows, caps, jitters, never under a second."""

from __future__ import annotations

import random

from services.backoff import Backoff


def test_delays_grow_and_cap_with_jitter_in_the_upper_half() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(12)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60.0, 2.0 ** (attempt - 1))
        assert max(1.0, ceiling / 2) <= delay <= ceiling
    assert max(delays) <= 60.0
    assert delays[-1] >= 30.0
    assert backoff.attempt == 12
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_jitter_differs_between_clients() -> None:
    first, second = Backoff(rng=random.Random(1)), Backoff(rng=random.Random(2))
    assert [first.next_delay() for _ in range(6)] != [second.next_delay() for _ in range(6)]
