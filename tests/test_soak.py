"""A soak in accelerated time: two simulated hours of polls, pushes, roll-overs and drops, resources flat."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import tracemalloc
from decimal import Decimal

from services.backoff import Backoff
from services.client import WsApiClient
from services.clock import VirtualClock
from services.endpoints import Credentials
from services.events import SnapshotEvent, StatusEvent
from services.feed import AccountFeed
from services.models import AccountSnapshot, LinkState
from services.simulator import ExchangeSimulator
from services.stream import UserDataStream
from tests.helpers import IO_TURN, TEST_API_KEY, TEST_SECRET

# What the test harness keeps on purpose is not the client's: the leak watch's log lines, the simulator's
# request log, and tracemalloc's own books.
HARNESS = (
    "*/tests/conftest.py",
    "*/logging/__init__.py",
    "*/_pytest/*",
    "*/services/simulator.py",
    "*/tracemalloc.py",
    "<frozen posixpath>",
    "<frozen genericpath>",
)


def client_memory() -> int:
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, pattern) for pattern in HARNESS])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
    return count


async def test_two_hours_stay_flat(clock: VirtualClock, hmac_credentials: Credentials) -> None:
    # Log records hold on to what they mention (websockets' debug lines hold whole frames), and the test harness
    # keeps every record: at DEBUG the harness itself would look like a leak. The leak watch still runs at INFO.
    logging.getLogger().setLevel(logging.INFO)
    sim = ExchangeSimulator(clock=clock, max_connection_age=15 * 60)  # a roll-over every 15 minutes
    sim.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    rng = random.Random(42)
    async with sim:
        client = WsApiClient(sim.ws_url, hmac_credentials, clock=clock, backoff=Backoff(rng=random.Random(1)))
        feed = AccountFeed(client, interval=2.0, stream=UserDataStream(client, sim.stream_url))
        latest: list[AccountSnapshot] = []
        states: list[LinkState] = []

        async def consume() -> None:
            async for event in feed.events():
                if isinstance(event, SnapshotEvent):
                    latest[:] = [event.snapshot]  # keep only the newest, as the screen does
                elif isinstance(event, StatusEvent):
                    states.append(event.status.state)
                    del states[:-10]

        consumer = asyncio.create_task(consume())
        tracemalloc.start()
        measured: dict[str, tuple[int, int, int]] = {}
        try:
            for second in range(2 * 3600):
                if second % 10 == 0:
                    await sim.push_balance_change("USDT", Decimal(rng.randint(-100, 100)) / 100)
                if second % 600 == 300:
                    await sim.drop_connections()  # a network blip, on top of the roll-overs
                await clock.advance(1.0)
                await asyncio.sleep(IO_TURN)
                if second in (1200, 2 * 3600 - 1):
                    gc.collect()
                    await asyncio.sleep(0.05)
                    name = "start" if second == 1200 else "end"
                    measured[name] = (client_memory(), len(asyncio.all_tasks()), open_sockets())
        finally:
            tracemalloc.stop()
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            await client.close()

    memory_start, tasks_start, sockets_start = measured["start"]
    memory_end, tasks_end, sockets_end = measured["end"]
    assert sim.handshakes >= 8  # roll-overs and drops did happen
    assert latest and latest[0].balances["USDT"].wallet_balance == sim.account.assets["USDT"].wallet
    assert states[-1] is LinkState.LIVE
    assert tasks_end <= tasks_start + 2, (tasks_start, tasks_end)
    assert sockets_end <= sockets_start + 2, (sockets_start, sockets_end)
    allowance = 500_000  # bytes over 100 minutes: noise, not a leak
    assert memory_end - memory_start < allowance, (memory_start, memory_end)
