"""How far this machine's clock is from the exchange's: measured on the event loop, never in a thread.

``session.status`` answers on the open connection with the server's time (weight 2); where it does not, ``GET
/fapi/v1/time`` (weight 1) if a URL for it is configured; else the local clock stands. The offset is the server's
time minus the middle of the round trip, good to half of it (PROTOCOL.md §3: a timestamp ahead of the server by a
second is refused).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.clock import Clock
from services.errors import RequestRejected

log = logging.getLogger("balance_tui.client")


@dataclass(frozen=True)
class Offset:
    """The exchange's clock minus this machine's, and how far off that may be (half the probe's round trip)."""

    ms: int
    uncertainty_ms: int


async def measure(
    clock: Clock, session_status: Callable[[], Awaitable[Any]], *, time_url: str | None, timeout: float
) -> Offset | None:
    """The offset by ``session.status`` on the connection, else by the REST time endpoint; None if neither said."""
    sent = clock.time_ms()
    try:
        result = await session_status()
        server_time = result.get("serverTime") if isinstance(result, dict) else None
    except RequestRejected:
        server_time = None
    received = clock.time_ms()
    if not isinstance(server_time, int) and time_url is not None:
        sent = clock.time_ms()
        server_time = await rest_server_time(time_url, timeout)
        received = clock.time_ms()
    if not isinstance(server_time, int):
        log.warning("the exchange gave no server time: using the local clock")
        return None
    offset = Offset(server_time - (sent + received) // 2, (received - sent + 1) // 2)
    log.info("clock offset %+d ms (± %d ms)", offset.ms, offset.uncertainty_ms)
    return offset


async def rest_server_time(url: str, timeout: float) -> int | None:
    """``GET /fapi/v1/time`` → ``serverTime``."""
    # Imported when needed: httpx loads its command line (and Rich with it) on import, a cost every start-up
    # would pay for a probe that is rarely made.
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(url)
        body = response.json(parse_float=Decimal)
    except (httpx.HTTPError, ValueError):
        return None
    value = body.get("serverTime") if isinstance(body, dict) else None
    return value if isinstance(value, int) else None
