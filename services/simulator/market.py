"""Mark prices on ``/market`` (PROTOCOL.md §6b): ``/market/ws/<stream>``, ``/market/stream?streams=a/b`` (wrapped
in ``{"stream", "data"}``), SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on either, every SUBSCRIBE acknowledged even
for a symbol that does not exist (as production does: an acknowledgement proves nothing), at most 10 incoming
messages a second per connection (more, and the connection is closed, as production does)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from services.simulator.account import amount
from services.simulator.core import Venue

MAX_INCOMING_PER_SECOND = 10


@dataclass(eq=False)
class MarketConnection:
    ws: ServerConnection
    combined: bool
    streams: set[str] = field(default_factory=set)
    incoming: list[int] = field(default_factory=list)  # server times of the last second's messages


class MarketHub:
    """The ``/market`` connections and the mark prices pushed on them."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue
        self.account = venue.account
        self._conns: set[MarketConnection] = set()
        self.mark_frames_sent = 0  # every mark frame sent on any /market connection

    def connections(self) -> list[MarketConnection]:
        return list(self._conns)

    async def serve(self, ws: ServerConnection, path: str, query: str) -> None:
        combined = path.startswith("/market/stream")
        conn = MarketConnection(ws, combined)
        if path.startswith("/market/ws/"):
            conn.streams.add(path.removeprefix("/market/ws/"))
        streams = parse_qs(query).get("streams")
        if streams:
            conn.streams.update(s for s in streams[0].split("/") if s)
        self._conns.add(conn)
        try:
            await self._venue.serve(ws, lambda frame: self._on_message(conn, frame))
        finally:
            self._conns.discard(conn)

    async def _on_message(self, conn: MarketConnection, frame: str | bytes) -> bool:
        now = self._venue.server_time_ms()
        conn.incoming = [t for t in conn.incoming if now - t < 1000] + [now]
        if len(conn.incoming) > MAX_INCOMING_PER_SECOND:
            await conn.ws.close(1008, "too many messages")
            return False
        try:
            message = json.loads(frame)
        except ValueError:
            return True
        if not isinstance(message, dict):
            return True
        method, params, request_id = message.get("method"), message.get("params") or [], message.get("id")
        result: Any = None
        if method == "SUBSCRIBE":
            conn.streams.update(p for p in params if isinstance(p, str))
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams)
        else:
            result = {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(json.dumps({"result": result, "id": request_id}))
        return True

    def mark_event(self, symbol: str) -> dict[str, Any]:
        now = self._venue.server_time_ms()
        price = amount(self.account.marks[symbol])
        return {
            "e": "markPriceUpdate", "E": now, "s": symbol, "p": price, "ap": price, "P": price, "i": price,
            "r": "0.00010000", "T": (now // 28_800_000 + 1) * 28_800_000, "st": 1,
        }  # fmt: skip

    async def push_marks(self, tick: int = 0) -> int:
        """Send every subscribed connection its marks (``@markPrice@1s`` every tick, ``@markPrice`` every third);
        returns how many frames went out. Nothing while the ``marks_stop`` fault is on."""
        if self._venue.faults.marks_stop:
            return 0
        sent = 0
        for conn in list(self._conns):
            for stream in sorted(conn.streams):
                payload: Any
                if stream in ("!markPrice@arr@1s", "!markPrice@arr"):
                    payload = [self.mark_event(s) for s in self.account.marks]
                else:
                    symbol, _, kind = stream.partition("@")
                    symbol = symbol.upper()
                    if symbol not in self.account.marks or kind not in ("markPrice@1s", "markPrice"):
                        continue  # acknowledged, and then nothing: as production does for an unknown symbol
                    if kind == "markPrice" and tick % 3:
                        continue
                    payload = self.mark_event(symbol)
                frame = {"stream": stream, "data": payload} if conn.combined else payload
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(json.dumps(frame))
                    sent += 1
        self.mark_frames_sent += sent
        return sent

    async def move_marks(self, changes: dict[str, Decimal | str]) -> int:
        """Set marks (tests, the console) and push them at once."""
        for symbol, price in changes.items():
            self.account.marks[symbol] = Decimal(price)
        self.account.mark_time = self._venue.server_time_ms()
        return await self.push_marks()

    def drop(self) -> int:
        """Abort every ``/market`` connection; returns how many."""
        conns = list(self._conns)
        for conn in conns:
            conn.ws.transport.abort()
        return len(conns)

    def subscriptions(self) -> set[str]:
        return {stream for conn in self._conns for stream in conn.streams}
