"""Test helpers: drive a virtual clock while real sockets do their work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from services.clock import VirtualClock

T = TypeVar("T")

# The real-time pause that lets loopback I/O happen between steps of virtual time. It paces a loop that waits
# for a condition; no result depends on its length.
IO_TURN = 0.002


async def drive(clock: VirtualClock, awaitable: Awaitable[T], *, step: float = 0.5, limit: float = 3600.0) -> T:
    """Await ``awaitable`` while moving ``clock`` forward ``step`` seconds at a time (at most ``limit`` seconds)."""
    task = asyncio.ensure_future(awaitable)
    moved = 0.0
    while not task.done():
        await asyncio.sleep(IO_TURN)
        if task.done():
            break
        if moved >= limit:
            task.cancel()
            raise AssertionError(f"still waiting after {limit} s of virtual time")
        await clock.advance(step)
        moved += step
    return task.result()


async def until(
    predicate: Callable[[], bool], *, clock: VirtualClock | None = None, step: float = 0.5, limit: float = 600.0
) -> None:
    """Wait until ``predicate()`` holds, moving the clock if one is given.

    Fails after ``limit`` seconds of virtual time with a clock, or after 10 s of real time without one: a condition
    that only needs loopback I/O is met in milliseconds or not at all.
    """
    loop = asyncio.get_running_loop()
    real_deadline = loop.time() + (limit if clock is not None else min(limit, 10.0))
    moved = 0.0
    while not predicate():
        await asyncio.sleep(IO_TURN)
        if predicate():
            return
        if clock is not None:
            if moved >= limit:
                raise AssertionError(f"condition not met within {limit} s of virtual time")
            await clock.advance(step)
            moved += step
        elif loop.time() > real_deadline:
            raise AssertionError("condition not met within 10 s")


class Collector(Generic[T]):
    """Runs an async iterator in a task and keeps everything it yields, until stopped."""

    def __init__(self, source: AsyncIterator[T]) -> None:
        self.items: list[T] = []
        self.task = asyncio.create_task(self._run(source))

    async def _run(self, source: AsyncIterator[T]) -> None:
        async for item in source:
            self.items.append(item)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
