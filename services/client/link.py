"""One open connection to the WebSocket API: the requests waiting on it, and its reader, which hands each frame to
the request it answers (in the order the exchange answered)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from services.client.replies import frame_id
from services.errors import ExchangeError, NetworkError, ProtocolError
from services.models import RateLimit
from services.shapes import loads_exact
from services.tasks import cancel_and_wait

log = logging.getLogger("balance_tui.client")

Message = dict[str, Any]


async def dial(url: str, *, open_timeout: float, max_size: int) -> ClientConnection:
    """Open a connection; websockets' own pings keep it alive, answered within 30 s. No per-message compression
    (docs/DECISIONS.md, "The API connection"): replies are a few KB, and deflating each on both ends cost more
    than the bytes it saved."""
    return await websockets.connect(
        url,
        compression=None,
        open_timeout=open_timeout,
        max_size=max_size,
        ping_interval=60,
        ping_timeout=30,
        close_timeout=2,
        user_agent_header="balance-tui",
    )


@dataclass
class Pending:
    """A request sent and not yet answered: what it was, and the weight booked for it."""

    future: asyncio.Future[Message]
    method: str
    booking: int  # in the ledger
    booked: int  # the weight booked
    limit: RateLimit | None = None  # the reply's REQUEST_WEIGHT entry, read once by the reader (meter.learn)


@dataclass
class Link:
    """One open connection and the requests waiting on it."""

    ws: ClientConnection
    opened_at: float
    pending: dict[str, Pending] = field(default_factory=dict)
    # The last reply's count on this connection and the window it was in: the next reply's count differs from it
    # by what the next request cost (and whatever else the IP spent between), which is how weights are learned.
    last_count: tuple[int, int] | None = None
    reader: asyncio.Task[None] | None = None
    session: bool = False  # a key is logged on: signed requests with that key need no signature
    expiring: bool = False  # the exchange announced it is going away: the next request opens a new one
    closing_error: ExchangeError | None = None

    def fail_pending(self, error: ExchangeError) -> None:
        pending, self.pending = self.pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(error)

    async def drain(self, timeout: float) -> None:
        """Close it once the requests already sent on it have their replies (a rolled-over connection)."""
        with contextlib.suppress(Exception):
            futures = [entry.future for entry in self.pending.values()]
            await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout)
        await self.shut(NetworkError("connection rolled over"))

    async def shut(self, error: ExchangeError) -> None:
        """Close it and fail whatever still waits on it (with the first reason it was given)."""
        self.closing_error = self.closing_error or error
        self.fail_pending(self.closing_error)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)
        if self.reader is not None and self.reader is not asyncio.current_task():
            await cancel_and_wait([self.reader])


class Reader:
    """Reads a link's frames until it closes, answering each waiting request with its reply.

    ``answered(link, entry, message)`` sees every reply first, in the exchange's order (the weight is learned there);
    ``unasked(message)`` is the error of an error reply nobody asked for (``id`` null: a revoked key)."""

    def __init__(
        self,
        link: Link,
        *,
        max_frame_size: int,
        answered: Callable[[Link, Pending, Message], None],
        unasked: Callable[[Message], ExchangeError],
    ) -> None:
        self.link = link
        self.max_frame_size = max_frame_size
        self.answered = answered
        self.unasked = unasked

    async def run(self) -> None:
        link = self.link
        error: ExchangeError
        try:
            async for frame in link.ws:
                self.frame(frame)
            code, reason = link.ws.close_code, link.ws.close_reason
            detail = f" (code {code}{': ' + reason if reason else ''})" if code is not None else ""
            error = NetworkError(f"the exchange closed the connection{detail}")
        except ConnectionClosed as exc:
            error = closed_error(exc, self.max_frame_size)
        except Exception as exc:  # never let a reader die silently with requests waiting
            log.exception("reader failed")
            error = ProtocolError(f"reader failed: {describe(exc)}")
        if link.closing_error is None:
            log.info("connection lost: %s", error)
        link.closing_error = link.closing_error or error
        link.fail_pending(link.closing_error)

    def frame(self, frame: str | bytes) -> None:
        link = self.link
        try:
            message = loads_exact(frame)
        except ValueError:
            # Which request it answered is readable when the frame begins as replies do ({"id": 7, ...): that one
            # fails, and the others' replies still count. Otherwise every request waiting on the connection fails,
            # rather than time out.
            error = ProtocolError("the exchange sent a frame that is not JSON")
            spoiled = frame_id(frame)
            entry = link.pending.pop(spoiled, None) if spoiled is not None else None
            if entry is None:
                link.fail_pending(error)
            elif not entry.future.done():
                entry.future.set_exception(error)
            return
        if not isinstance(message, dict):
            link.fail_pending(ProtocolError("the exchange sent JSON that is not an object"))
            return
        event = message.get("event")
        if isinstance(event, dict) and event.get("e") == "serverShutdown":
            log.info("server shutdown announced: rolling over")
            link.expiring = True
            return
        if "id" not in message:
            log.warning("dropped a frame with no id")
            return
        if message["id"] is None:
            # An error nobody asked for, e.g. -2015 after the key was revoked: it concerns every request.
            link.fail_pending(self.unasked(message))
            return
        entry = link.pending.pop(str(message["id"]), None)
        if entry is None:
            log.warning("dropped a reply to an unknown id %r", message["id"])
            return
        self.answered(link, entry, message)
        if not entry.future.done():
            entry.future.set_result(message)


def closed_error(exc: ConnectionClosed, max_frame_size: int) -> ExchangeError:
    sent, rcvd = exc.sent, exc.rcvd
    if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
        return ProtocolError(f"the exchange sent a frame larger than {max_frame_size} bytes")
    if rcvd is not None:
        reason = f": {rcvd.reason}" if rcvd.reason else ""
        return NetworkError(f"the exchange closed the connection (code {rcvd.code}{reason})")
    return NetworkError("the connection dropped")


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
