"""Stopping tasks for certain: cancel, and cancel again until they are done.

A single ``cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` swallows a cancellation that lands
just as the future it waits on completes (CPython issue 86296), and the task runs on. A feed stopped on a signal
then waited for a poll loop that would never end. Every place that stops its helpers uses this one function.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from services.clock import Clock

RETRY_AFTER = 0.1  # seconds between cancellations of a task that did not stop


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and return once every one has finished, cancelling again any that ignored it."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RETRY_AFTER)
    for task in tasks:  # their failures were theirs to report; retrieved here so asyncio does not complain later
        if not task.cancelled():
            task.exception()


async def wait_or_set(clock: Clock, seconds: float | None, event: asyncio.Event) -> None:
    """Sleep ``seconds`` on ``clock`` (None: for ever), or until ``event`` is set: whichever comes first."""
    alarm = asyncio.create_task(_ring(clock, seconds, event), name="alarm") if seconds is not None else None
    try:
        await event.wait()
    finally:
        if alarm is not None:
            alarm.cancel()


async def _ring(clock: Clock, seconds: float, event: asyncio.Event) -> None:
    await clock.sleep(seconds)
    event.set()
