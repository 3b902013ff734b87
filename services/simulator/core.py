"""The simulator's core: its state, the exchange's time, and the small shapes every part of it shares."""

from __future__ import annotations

import asyncio
import http
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from services.clock import Clock
from services.simulator.account import SimulatedAccount
from services.simulator.faults import Faults

log = logging.getLogger("balance_tui.simulator")

#: The exchange's request weights (PROTOCOL.md §4–§6), kept here on the exchange's side: the simulator charges what
#: Binance charges, whatever the client believes. The v1 account methods are contested (the change log says 10, their
#: pages 5): the simulator charges the change log's 10 unless told ``v1_weight=5``.
V1_METHODS = ("account.balance", "account.status", "account.position")
V1_WEIGHT = 10
WEIGHTS: Mapping[str, int] = {
    "account.balance": V1_WEIGHT,
    "v2/account.balance": 5,
    "account.status": V1_WEIGHT,
    "v2/account.status": 5,
    "account.position": V1_WEIGHT,
    "v2/account.position": 5,
    "session.logon": 2,
    "session.status": 2,
    "session.logout": 2,
    "userDataStream.start": 1,
    "userDataStream.ping": 1,
    "userDataStream.stop": 1,
}
HANDSHAKE_WEIGHT = 5
#: A push's transaction time ``T`` is this many ms before its event time ``E`` (every production capture has T a few
#: ms before E); an asset's ``updateTime`` in a poll is the transaction time.
PUSH_LAG_MS = 3
MAX_RECV_WINDOW = 60_000
LISTEN_KEY_LIFETIME_MS = 60 * 60 * 1000
MAX_BAN_MS = 3 * 24 * 3600 * 1000
SIGNED_METHODS = frozenset(
    {
        "account.balance",
        "v2/account.balance",
        "account.status",
        "v2/account.status",
        "account.position",
        "v2/account.position",
    }
)


@dataclass(eq=False)
class ApiConnection:
    ws: ServerConnection
    connected_at_ms: int
    return_rate_limits: bool = True
    session_key: str | None = None
    authorized_since: int | None = None
    requests: int = 0  # received on this connection (for the faults that act after so many)


class Refusal(Exception):
    """An error reply to the request at hand."""

    def __init__(self, status: int, code: int, msg: str, *, to_null_id: bool = False) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.to_null_id = status, code, msg, to_null_id


FrameHandler = Callable[[str | bytes], Awaitable[bool]]


class Venue:
    """What every part of the exchange shares: its clock (the server's time is the machine's plus any skew), the
    account, the faults switched on, how long a connection may live, and the background tasks it runs."""

    def __init__(self, *, clock: Clock, account: SimulatedAccount, max_connection_age: float) -> None:
        self.clock = clock
        self.account = account
        self.max_connection_age = max_connection_age
        self.faults = Faults()
        self.tasks: set[asyncio.Task[None]] = set()

    def server_time_ms(self) -> int:
        return self.clock.time_ms() + self.faults.clock_skew_ms

    def reported_time_ms(self) -> int:
        """The server time the exchange tells a client (session.status, /fapi/v1/time)."""
        return self.server_time_ms() + self.faults.reported_skew_ms

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def serve(self, ws: ServerConnection, on_frame: FrameHandler | None = None) -> None:
        """Serve one connection until it closes: each frame it sends to ``on_frame`` (which returns False once the
        connection is to be dropped), or none read at all; closed once it has lived ``max_connection_age``."""
        lifetime = asyncio.create_task(self._expire_after(ws, self.max_connection_age))
        try:
            if on_frame is None:
                await ws.wait_closed()
            else:
                async for frame in ws:
                    if not await on_frame(frame):
                        break
        except ConnectionClosed:
            pass
        finally:
            lifetime.cancel()

    async def _expire_after(self, ws: ServerConnection, seconds: float) -> None:
        await self.clock.sleep(seconds)
        await ws.close(1000, "connection lifetime exceeded")


def json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def json_response(status: int, body: Mapping[str, Any]) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(status, http.HTTPStatus(status).phrase, headers, data)
