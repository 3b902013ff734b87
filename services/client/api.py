"""The Binance USDⓈ-M Futures WebSocket API client: one persistent connection, requests matched to replies by id.

What it does that the official SDK does not (PROTOCOL.md §8): it keeps a clock offset and re-measures it after
-1021, reconnects after a drop with backoff and jitter, rolls the connection over before the 24 h limit, logs an
Ed25519 key on for the session, and stops sending the moment the exchange says 429 or 418. Every failure reaches
the caller as one of the typed errors in :mod:`services.errors`.

One client may carry the requests of several accounts (PROTOCOL.md §10): each request is signed with the
credentials it is given; the client's own key may hold the connection's session.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Mapping
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from services.backoff import Backoff
from services.client import clocksync
from services.client.auth import Security, request_params
from services.client.gate import Gate
from services.client.link import Link, Message, Pending, Reader, closed_error, describe, dial
from services.client.meter import Meter
from services.client.methods import AccountMethods
from services.client.replies import Reply, as_dict, classify_error, refused_handshake
from services.clock import SYSTEM_CLOCK, Clock
from services.endpoints import MAX_RECV_WINDOW, Credentials
from services.errors import (
    ClockSkew,
    CredentialsRejected,
    ExchangeError,
    NetworkError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    ServerError,
    because,
)
from services.signing import Ed25519Signer, ParamValue
from services.tasks import cancel_and_wait
from services.weight import HANDSHAKE_WEIGHT, WeightTable

log = logging.getLogger("balance_tui.client")

#: The exchange's answer to ``session.logon`` with a key type that cannot log on (PROTOCOL.md §3, [open]).
KEY_TYPE_CODE = -4056
#: Binance closes a connection after 24 h; roll over an hour before, as the SDK does.
DEFAULT_MAX_AGE = 23 * 3600.0
#: The clock's offset is measured again this often (and after every -1021), not on every connection.
CLOCK_RESYNC = 3600.0
#: A full ``account.status`` lists every symbol of the market: generous, but bounded.
DEFAULT_MAX_FRAME = 8 * 1024 * 1024
NO_OFFSET = clocksync.Offset(0, 0)


class WsApiClient(AccountMethods):
    """A client for the futures WebSocket API, usable from any asyncio program.

    ``request`` connects on demand. A failed connect raises :class:`NetworkError` whose ``retry_in`` is the
    backoff's advice, and the next ``connect`` waits at least that long, so no caller can hammer the server.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        recv_window: int | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        max_connection_age: float = DEFAULT_MAX_AGE,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        backoff: Backoff | None = None,
        use_session: bool = True,
        time_url: str | None = None,
    ) -> None:
        if recv_window is not None and not 0 < recv_window <= MAX_RECV_WINDOW:
            raise ValueError(f"recvWindow must be between 1 and {MAX_RECV_WINDOW} ms, not {recv_window}")
        self.url = url
        self.credentials = credentials
        self.clock = clock
        self.recv_window = recv_window
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.max_connection_age = max_connection_age
        self.max_frame_size = max_frame_size
        self.backoff = backoff or Backoff()
        self.use_session = use_session
        self.time_url = time_url

        #: The exchange's clock minus this machine's, replaced whole when measured again.
        self.offset = NO_OFFSET
        self._clock_measured_at: float | None = None  # monotonic; None: to be measured on the next connection
        self.gate = Gate()
        self._opened = 0
        self._link: Link | None = None
        self._connect_lock = asyncio.Lock()
        self._next_connect_at = 0.0
        self._ids = itertools.count(1)
        self.meter = Meter()
        self._session_refused = False
        self._retiring: set[asyncio.Task[None]] = set()

    # -- what it knows ----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def session_active(self) -> bool:
        return self._link is not None and self._link.session

    @property
    def connections_opened(self) -> int:
        """How many connections this client has opened: a new one means a new session and a new weight count."""
        return self._opened

    @property
    def weights(self) -> WeightTable:
        """What each method costs, learned from the exchange's counts."""
        return self.meter.weights

    @property
    def clock_offset_ms(self) -> int:
        return self.offset.ms

    def server_time_ms(self) -> int:
        """The exchange's time as this client best knows it: local time plus the measured offset."""
        return self.clock.time_ms() + self.offset.ms

    def own_weight(self) -> int:
        """The request weight this client has spent in the current window, handshakes included."""
        return self.meter.own(self.server_time_ms())

    def window_resets_at_ms(self) -> int:
        """When the current fixed weight window ends, in the exchange's time."""
        return self.meter.window_end_ms(self.server_time_ms())

    def _book(self, weight: int) -> int:
        """Book weight about to be spent; returns the booking (the ledger keeps it, to be corrected)."""
        return self.meter.book(self.server_time_ms(), weight, uncertainty_ms=self.offset.uncertainty_ms)

    # -- connection -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> WsApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection if it is not open: one attempt, after the backoff's wait if the last one failed."""
        async with self._connect_lock:
            if self._link is not None and not self._needs_rollover(self._link):
                return
            old = self._link
            self._link = await self._open()
            if old is not None:
                self._retire(old)

    async def close(self) -> None:
        """Close the connection and fail whatever is still waiting on it."""
        link, self._link = self._link, None
        if link is not None:
            await link.shut(NetworkError("client closed"))
        await cancel_and_wait(list(self._retiring))

    def _needs_rollover(self, link: Link) -> bool:
        return link.expiring or self.clock.monotonic() - link.opened_at >= self.max_connection_age

    async def _open(self) -> Link:
        wait = self._next_connect_at - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep(wait)
        self.gate.check(self.server_time_ms())
        try:
            ws = await dial(self.url, open_timeout=self.connect_timeout, max_size=self.max_frame_size)
        except InvalidStatus as exc:
            raise self._handshake_refused(exc) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            delay = self._connect_failed()
            raise NetworkError(because(f"cannot connect to {self.url}", describe(exc)), retry_in=delay) from None
        self._opened += 1
        self._book(HANDSHAKE_WEIGHT)  # the exchange counted the handshake before we could send anything
        link = Link(ws=ws, opened_at=self.clock.monotonic())
        reader = Reader(link, max_frame_size=self.max_frame_size, answered=self._learn_weight, unasked=self._unasked)
        link.reader = asyncio.create_task(self._read(link, reader), name="wsapi-reader")
        try:
            await self._prepare(link)
        except ExchangeError as exc:
            await link.shut(NetworkError("connection set-up failed"))
            if isinstance(exc, NetworkError | ProtocolError | ServerError):
                delay = self._connect_failed()
                raise NetworkError(because("connection set-up failed", exc), retry_in=delay) from None
            raise
        self.backoff.reset()
        self._next_connect_at = self.clock.monotonic() + self.backoff.base
        log.info("connected to %s (session logon: %s)", self.url, link.session)
        return link

    async def _read(self, link: Link, reader: Reader) -> None:
        await reader.run()
        if self._link is link:
            self._link = None

    def _connect_failed(self) -> float:
        delay = self.backoff.next_delay()
        self._next_connect_at = self.clock.monotonic() + delay
        return delay

    def _handshake_refused(self, exc: InvalidStatus) -> ExchangeError:
        limited = refused_handshake(exc.response.status_code, exc.response.headers, self.server_time_ms())
        if limited is not None:
            return self._block(limited)
        delay = self._connect_failed()
        return NetworkError(f"the exchange refused the connection (HTTP {exc.response.status_code})", retry_in=delay)

    async def _prepare(self, link: Link) -> None:
        """Measure the clock if it is due, then log an Ed25519 key on for the session.

        The clock's offset does not change with the connection: it is measured on the first, after -1021 and once an
        hour, not on every new one (on a link that drops after every few requests, a probe on each connection was one
        of the few requests it answered)."""
        if self._clock_measured_at is None or self.clock.monotonic() - self._clock_measured_at >= CLOCK_RESYNC:
            await self._sync_clock(link)
        creds = self.credentials
        if creds is None or not self.use_session or self._session_refused:
            return
        if not isinstance(creds.signer, Ed25519Signer):
            return  # HMAC and RSA keys cannot log on (PROTOCOL.md §3): they sign every request.
        try:
            await self._send(link, "session.logon", self._logon_params(creds))
        except (RequestRejected, ClockSkew) as exc:
            # Signing every request works everywhere, so a refused logon never stops the client. Only a key the
            # exchange says cannot log on (-4056) gives sessions up for good; anything else (a -1021 before the
            # clock settled, a passing error) costs this connection its session, and the next one tries again.
            permanent = exc.code == KEY_TYPE_CODE
            self._session_refused = self._session_refused or permanent
            log.warning(
                "session.logon refused (%s): signing every request %s",
                exc,
                "from now on" if permanent else "on this connection",
            )
            return
        link.session = True

    def _retire(self, link: Link) -> None:
        """Close a rolled-over connection once the requests already sent on it have their replies."""
        task = asyncio.create_task(link.drain(self.request_timeout), name="wsapi-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -- what the reader reports ------------------------------------------------------------------------------

    def _unasked(self, message: Message) -> ExchangeError:
        return self._outcome(message, "(any)")

    def _outcome(self, message: Mapping[str, Any], method: str) -> ExchangeError:
        error = classify_error(message, method=method, now_ms=self.server_time_ms())
        return self._block(error) if isinstance(error, RateLimited) else error

    def _block(self, limited: RateLimited) -> RateLimited:
        """Nothing is sent until a 429/418 says so, and no connection is opened before: a second could get a ban."""
        now = self.server_time_ms()
        blocked = self.gate.block(limited, now)
        self._next_connect_at = max(self._next_connect_at, self.clock.monotonic() + (blocked.retry_at_ms - now) / 1000)
        return blocked

    def _learn_weight(self, link: Link, entry: Pending, message: Message) -> None:
        self.meter.learn(link, entry, message, self.server_time_ms(), self.offset.uncertainty_ms)

    # -- requests ---------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        security: Security = "none",
        credentials: Credentials | None = None,
    ) -> Reply:
        """Send one request and return its reply; signed requests that meet -1021 are re-timed and sent once more.

        ``credentials`` sign it (an account of a desk); without them, the client's own."""
        self.gate.check(self.server_time_ms())
        creds = credentials or self.credentials
        if security != "none" and creds is None:
            raise CredentialsRejected("this request needs an API key and none is configured")
        if self._link is None or self._needs_rollover(self._link):
            await self.connect()
        link = self._link
        if link is None:
            raise NetworkError("the connection closed while it was being opened")
        try:
            return await self._send(link, method, self._params(link, params, security, creds))
        except ClockSkew:
            if security != "signed":
                raise
            log.info("-1021 on %s: re-measuring the clock and retrying once", method)
            await self.sync_clock()
            link = self._link
            if link is None:
                raise
            return await self._send(link, method, self._params(link, params, security, creds))

    def _logon_params(self, creds: Credentials) -> dict[str, ParamValue]:
        now = self.server_time_ms()
        return request_params({}, "signed", creds, now_ms=now, recv_window=self.recv_window, session=False)

    def _params(
        self, link: Link, params: Mapping[str, ParamValue] | None, security: Security, creds: Credentials | None
    ) -> dict[str, ParamValue]:
        # A logged-on session authenticates the requests of the key that logged on, and only those (§3, §10).
        session = link.session and creds is self.credentials
        return request_params(
            params, security, creds, now_ms=self.server_time_ms(), recv_window=self.recv_window, session=session
        )

    async def _send(self, link: Link, method: str, params: dict[str, ParamValue]) -> Reply:
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()
        frame = json.dumps({"id": request_id, "method": method, "params": params}, separators=(",", ":"))
        started = loop.time()  # RTT on the loop's own clock: it is about the network, not the injectable wall clock
        # Booked before it goes out: a budget check that runs while this request is in flight must see it.
        weight = self.meter.weights.of(method)
        entry = Pending(future, method, self._book(weight), weight)
        link.pending[str(request_id)] = entry
        try:
            await link.ws.send(frame)
        except ConnectionClosed as exc:
            link.pending.pop(str(request_id), None)
            if future.done() and not future.cancelled():
                future.exception()  # the reader failed it already; this raise reports it
            raise link.closing_error or closed_error(exc, self.max_frame_size) from None
        try:
            message = await self.clock.wait_for(future, self.request_timeout)
        except TimeoutError:
            link.pending.pop(str(request_id), None)
            # A server that lets a request go unanswered is not to be trusted with the next one.
            if self._link is link:
                self._link = None
            await link.shut(NetworkError(f"no reply from the exchange within {self.request_timeout:g} s"))
            raise NetworkError(
                f"no reply to {method} within {self.request_timeout:g} s", retry_in=self.backoff.base
            ) from None
        rtt_ms = round((loop.time() - started) * 1000)
        reading = self.meter.reading(message, entry, self.server_time_ms())
        if message.get("status") == 200 and "result" in message:
            return Reply(method=method, result=message["result"], weight=reading, rtt_ms=rtt_ms)
        raise self._outcome(message, method)

    # -- session and clock ------------------------------------------------------------------------------------

    async def sync_clock(self) -> int:
        """Re-measure the offset between this machine's clock and the exchange's; returns it in ms."""
        self._clock_measured_at = None
        if self._link is None:
            await self.connect()  # a new connection measures it, being due
            return self.offset.ms
        await self._sync_clock(self._link)
        return self.offset.ms

    async def _sync_clock(self, link: Link) -> None:
        async def session_status() -> Any:
            return (await self._send(link, "session.status", {})).result

        measured = await clocksync.measure(
            self.clock, session_status, time_url=self.time_url, timeout=self.connect_timeout
        )
        self._clock_measured_at = self.clock.monotonic()  # tried: not again before it is due
        if measured is not None:
            self.offset = measured

    async def session_logon(self) -> dict[str, Any]:
        creds = self.credentials
        if creds is None:
            raise CredentialsRejected("this request needs an API key and none is configured")
        if self._link is None:
            await self.connect()
        link = self._link
        if link is None:
            raise NetworkError("not connected")
        reply = await self._send(link, "session.logon", self._logon_params(creds))
        link.session = True
        return as_dict(reply.result, "session.logon")

    async def session_logout(self) -> dict[str, Any]:
        reply = await self.request("session.logout")
        if self._link is not None:
            self._link.session = False
        return as_dict(reply.result, "session.logout")
