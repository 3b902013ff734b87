"""Mark prices for the symbols held, from one ``/market`` connection: free, no key, no weight (PROTOCOL.md §6b).

The connection is opened as ``<base>/market/stream?streams=<symbol>@markPrice@1s/...`` for the symbols held when it
opens; as positions open and close, SUBSCRIBE / UNSUBSCRIBE follow them, at most ten messages a second to the server
(production closes a connection that sends more). An acknowledgement proves nothing (production acknowledges a
symbol that does not exist): only a mark arriving does. The connection has its own backoff, rolls over before the
24 h limit, and ignores COIN-M rows (``st`` 2). No symbols held: no connection at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import websockets
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from services.backoff import Backoff
from services.clock import Clock
from services.positions import MarkPrice, parse_mark_frame
from services.shapes import loads_exact
from services.tasks import cancel_and_wait

log = logging.getLogger("balance_tui.marks")

#: Production closes a connection after 24 h; roll over an hour before.
MAX_AGE = 23 * 3600.0
#: Messages a second to the server: production allows ten; stay under it.
SEND_GAP = 0.15
#: Streams in one SUBSCRIBE: well under the 1024 a connection may hold.
BATCH = 50


def stream_name(symbol: str) -> str:
    return f"{symbol.lower()}@markPrice@1s"


@dataclass(frozen=True)
class MarkState:
    """The market connection went up or down (``live``, ``reconnecting``), or has nothing to follow (``idle``)."""

    state: str
    detail: str = ""


MarkItem = MarkPrice | MarkState


class MarkPriceStream:
    """Yields mark prices for the symbols asked for with :meth:`follow`, and the connection's changes of state."""

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock,
        backoff: Backoff | None = None,
        max_age: float = MAX_AGE,
        open_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.max_age = max_age
        self.open_timeout = open_timeout
        self.wanted: set[str] = set()
        self.subscribed: set[str] = set()
        self.connections_opened = 0
        self._changed = asyncio.Event()
        self.messages_sent: list[float] = []  # monotonic times, for the rate rule (and the tests that check it)

    def follow(self, symbols: set[str]) -> None:
        """Follow these symbols from now on (the positions held)."""
        if symbols != self.wanted:
            self.wanted = set(symbols)
            self._changed.set()

    async def events(self) -> AsyncIterator[MarkItem]:
        while True:
            if not self.wanted:
                yield MarkState("idle")
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                async for item in self._one_connection():
                    yield item
                detail = "rolled over" if self.wanted else ""
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
                detail = str(exc) or type(exc).__name__
            if not self.wanted:
                continue
            delay = self.backoff.next_delay() if detail != "rolled over" else 0.0
            log.info("mark prices: connection down (%s); again in %.1f s", detail, delay)
            yield MarkState("reconnecting", detail)
            await self.clock.sleep(delay)

    async def _one_connection(self) -> AsyncIterator[MarkItem]:
        first = sorted(self.wanted)[:BATCH]
        url = f"{self.base_url}/market/stream?streams={'/'.join(stream_name(s) for s in first)}"
        ws = await websockets.connect(url, open_timeout=self.open_timeout, ping_interval=60, ping_timeout=30)
        self.connections_opened += 1
        self.subscribed = set(first)
        opened = self.clock.monotonic()
        sync = asyncio.create_task(self._keep_subscriptions(ws), name="marks-subscriptions")
        try:
            self.backoff.reset()
            yield MarkState("live")
            async for frame in ws:
                try:
                    parsed = parse_mark_frame(loads_exact(frame))
                except (ValueError, ValidationError):
                    log.warning("ignored a /market frame that is not a mark price")
                    continue
                for mark in parsed if isinstance(parsed, list) else [parsed] if parsed else []:
                    if mark.symbol in self.wanted:
                        yield mark
                if self.clock.monotonic() - opened >= self.max_age:
                    return  # planned roll-over, before the server's 24 h cut
                if not self.wanted:
                    return
        finally:
            await cancel_and_wait([sync])
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)

    async def _keep_subscriptions(self, ws: websockets.ClientConnection) -> None:
        """SUBSCRIBE / UNSUBSCRIBE as the symbols held change, never faster than the server allows."""
        ids = 0
        while True:
            add = sorted(self.wanted - self.subscribed)
            remove = sorted(self.subscribed - self.wanted)
            if not add and not remove:
                self._changed.clear()
                await self._changed.wait()
                continue
            for method, symbols in (("UNSUBSCRIBE", remove), ("SUBSCRIBE", add)):
                for i in range(0, len(symbols), BATCH):
                    batch = symbols[i : i + BATCH]
                    ids += 1
                    await ws.send(json.dumps({"method": method, "params": [stream_name(s) for s in batch], "id": ids}))
                    self.messages_sent.append(self.clock.monotonic())
                    if method == "SUBSCRIBE":
                        self.subscribed.update(batch)
                    else:
                        self.subscribed.difference_update(batch)
                    await self.clock.sleep(SEND_GAP)
