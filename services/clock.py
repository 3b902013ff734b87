"""Time, injected: the wall clock the exchange cares about and the sleeps that pace the client.

Production uses :data:`SYSTEM_CLOCK`. Tests use :class:`VirtualClock`, which only moves when told to, so a 24 h
connection roll-over or a ten-minute soak runs in milliseconds and no test sleeps its way to a result.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Where the client and the simulator read the time and wait."""

    def time_ms(self) -> int:
        """Wall-clock time in integer milliseconds since the epoch (what Binance timestamps are)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for ages and intervals."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this many seconds of this clock's time."""
        ...

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """What ``awaitable`` gives, or :class:`TimeoutError` once ``seconds`` have passed (it is cancelled then)."""
        ...


class SystemClock:
    """The real clock."""

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(awaitable, seconds)


SYSTEM_CLOCK = SystemClock()


class VirtualClock:
    """A clock that stands still until :meth:`advance` moves it; sleepers wake in order of their deadlines."""

    def __init__(self, start_ms: int = 1_764_000_000_000) -> None:
        self._start_ms = start_ms
        # Seconds since start, kept small: at epoch magnitude (~1.8e9 s) a float cannot hold a sub-microsecond
        # step, and a sleep that short would wake at the very instant it began, over and over.
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time_ms(self) -> int:
        return self._start_ms + round(self._now * 1000)

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """Time out once ``seconds`` have passed on this clock *and* on the loop's.

        What is awaited travels over a real socket: a loop held up by a busy machine while this clock stands
        still is no silence from the other end (a reply sitting unread would be thrown away), and a peer that
        really is silent is found as soon as the test moves this clock and the reply has had that long to come.
        """
        loop = asyncio.get_running_loop()
        real_deadline = loop.time() + seconds
        work = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.sleep(seconds))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                return await asyncio.wait_for(work, max(0.0, real_deadline - loop.time()))
            return work.result()
        finally:
            timer.cancel()
            work.cancel()  # a no-op once it is done; what the caller's cancellation or the timeout leaves behind

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock (cancelled waits are not counted)."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def advance(self, seconds: float, *, step: float | None = None) -> None:
        """Move time forward, waking each sleeper at its deadline and letting the loop run after each.

        With ``step``, time moves in increments of at most ``step`` seconds so that work a wake-up starts (a new
        sleep, a request over a real socket) gets to run between them.
        """
        target = self._now + seconds
        while True:
            limit = target if step is None else min(target, self._now + step)
            while self._sleepers and self._sleepers[0][0] <= limit:
                deadline, _, future = heapq.heappop(self._sleepers)
                self._now = max(self._now, deadline)
                if not future.done():
                    future.set_result(None)
                await _settle()
            self._now = limit
            await _settle()
            if limit >= target:
                return


async def _settle(rounds: int = 5) -> None:
    """Let ready callbacks run: a few passes of the event loop, no wall-clock wait."""
    for _ in range(rounds):
        await asyncio.sleep(0)
