"""The Binance USDⓈ-M Futures WebSocket API client: one persistent connection, requests matched to replies by id.

What it does that the official SDK does not (PROTOCOL.md §8): it keeps a clock offset and re-measures it after
-1021, reconnects after a drop with backoff and jitter, rolls the connection over before the 24 h limit, logs an
Ed25519 key on for the session, and stops sending the moment the exchange says 429 or 418. Every failure reaches
the caller as one of the typed errors in :mod:`services.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import websockets
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode

from services.backoff import Backoff
from services.clock import SYSTEM_CLOCK, Clock
from services.errors import (
    CLOCK_CODE,
    CREDENTIAL_CODES,
    RATE_LIMIT_CODE,
    SERVER_CODES,
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
from services.models import AccountStatus, BalanceRow, RateLimit, WeightReading
from services.positions import Position
from services.signing import Ed25519Signer, ParamValue, Signer, signing_text
from services.tasks import cancel_and_wait
from services.weight import HANDSHAKE_WEIGHT, WeightLedger, WeightTable, window_of

log = logging.getLogger("balance_tui.wsapi")

PRODUCTION_URL = "wss://ws-fapi.binance.com/ws-fapi/v1"
TESTNET_URL = "wss://testnet.binancefuture.com/ws-fapi/v1"

#: The exchange's answer to ``session.logon`` with a key type that cannot log on (PROTOCOL.md §3, [open]).
KEY_TYPE_CODE = -4056
MAX_RECV_WINDOW = 60_000
#: Binance closes a connection after 24 h; roll over an hour before, as the SDK does.
DEFAULT_MAX_AGE = 23 * 3600.0
#: The clock's offset is measured again this often (and after every -1021), not on every connection.
CLOCK_RESYNC = 3600.0
#: A full ``account.status`` lists every symbol of the market: generous, but bounded.
DEFAULT_MAX_FRAME = 8 * 1024 * 1024

Security = Literal["none", "api_key", "signed"]


@dataclass(frozen=True)
class Credentials:
    """An API key and the signer for its secret or private key. The repr shows neither."""

    api_key: str = field(repr=False)
    signer: Signer = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask_key(self.api_key)}, kind={self.signer.kind})"


def mask_key(api_key: str) -> str:
    """An API key cut to its first and last four characters: enough to tell keys apart in a log."""
    return f"{api_key[:4]}…{api_key[-4:]}" if len(api_key) > 12 else "****"


@dataclass(frozen=True)
class Reply:
    """A successful reply: its ``result`` (JSON, numbers as Decimal) and the weight reading it carried.

    What a request learned travels with its reply: two requests in flight can never overwrite each other's reading.
    """

    method: str
    result: Any
    weight: WeightReading | None
    rtt_ms: int


T = TypeVar("T")


@dataclass(frozen=True)
class Fetched(Generic[T]):
    """A validated result with the facts of the reply that carried it."""

    value: T
    weight: WeightReading | None
    rtt_ms: int
    method: str


@dataclass
class _Pending:
    """A request sent and not yet answered: what it was, and the weight booked for it."""

    future: asyncio.Future[dict[str, Any]]
    method: str
    booking: int  # in the ledger
    booked: int  # the weight booked


@dataclass
class _Link:
    """One open connection and the requests waiting on it."""

    ws: ClientConnection
    opened_at: float
    pending: dict[str, _Pending] = field(default_factory=dict)
    # The last reply's count on this connection and the window it was in: the next reply's count differs from it
    # by what the next request cost (and whatever else the IP spent between), which is how weights are learned.
    last_count: tuple[int, int] | None = None
    reader: asyncio.Task[None] | None = None
    session: bool = False
    expiring: bool = False
    closing_error: ExchangeError | None = None


_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")


class WsApiClient:
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

        self.clock_offset_ms = 0
        # How far off the offset may be: half the round trip of the probe that measured it.
        self.clock_uncertainty_ms = 0
        self._clock_measured_at: float | None = None  # monotonic; None: to be measured on the next connection
        self.blocked_until_ms = 0
        self._banned = False
        self.connections_opened = 0
        self._link: _Link | None = None
        self._connect_lock = asyncio.Lock()
        self._next_connect_at = 0.0
        self._ids = itertools.count(1)
        self._ledger = WeightLedger()
        self.weights = WeightTable()  # what each method costs, learned from the exchange's counts
        self._session_refused = False
        self._closed = False
        self._retiring: set[asyncio.Task[None]] = set()

    # -- public state -----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def session_active(self) -> bool:
        return self._link is not None and self._link.session

    def server_time_ms(self) -> int:
        """The exchange's time as this client best knows it: local time plus the measured offset."""
        return self.clock.time_ms() + self.clock_offset_ms

    def own_weight(self) -> int:
        """The request weight this client has spent in the current window, handshakes included."""
        return self._ledger.own(self.server_time_ms())

    def window_resets_at_ms(self) -> int:
        """When the current fixed weight window ends, in the exchange's time."""
        return self._ledger.window_end_ms(self.server_time_ms())

    def _book(self, weight: int) -> int:
        """Book weight about to be spent; returns the booking (the ledger keeps it, to be corrected)."""
        return self._ledger.book(self.server_time_ms(), weight, uncertainty_ms=self.clock_uncertainty_ms)

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
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            await self._shut(link, NetworkError("client closed"))
        await cancel_and_wait(list(self._retiring))

    def _needs_rollover(self, link: _Link) -> bool:
        return link.expiring or self.clock.monotonic() - link.opened_at >= self.max_connection_age

    async def _open(self) -> _Link:
        self._closed = False
        wait = self._next_connect_at - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep(wait)
        self._check_gate()
        try:
            ws = await websockets.connect(
                self.url,
                open_timeout=self.connect_timeout,
                max_size=self.max_frame_size,
                ping_interval=60,
                ping_timeout=30,
                close_timeout=2,
                user_agent_header="balance-tui",
            )
        except InvalidStatus as exc:
            raise self._handshake_refused(exc) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            delay = self._connect_failed()
            raise NetworkError(because(f"cannot connect to {self.url}", _describe(exc)), retry_in=delay) from None
        self.connections_opened += 1
        self._book(HANDSHAKE_WEIGHT)  # the exchange counted the handshake before we could send anything
        link = _Link(ws=ws, opened_at=self.clock.monotonic())
        link.reader = asyncio.create_task(self._read(link), name="wsapi-reader")
        try:
            await self._prepare(link)
        except ExchangeError as exc:
            await self._shut(link, NetworkError("connection set-up failed"))
            if isinstance(exc, NetworkError | ProtocolError | ServerError):
                delay = self._connect_failed()
                raise NetworkError(because("connection set-up failed", exc), retry_in=delay) from None
            raise
        self.backoff.reset()
        self._next_connect_at = self.clock.monotonic() + self.backoff.base
        log.info("connected to %s (session logon: %s)", self.url, link.session)
        return link

    def _connect_failed(self) -> float:
        delay = self.backoff.next_delay()
        self._next_connect_at = self.clock.monotonic() + delay
        return delay

    def _handshake_refused(self, exc: InvalidStatus) -> ExchangeError:
        status = exc.response.status_code
        if status in (418, 429):
            retry_after = exc.response.headers.get("Retry-After", "")
            seconds = int(retry_after) if retry_after.isdigit() else 60
            return self._rate_limited(
                status, RATE_LIMIT_CODE, f"the exchange refused the connection ({status})", seconds * 1000
            )
        delay = self._connect_failed()
        return NetworkError(f"the exchange refused the connection (HTTP {status})", retry_in=delay)

    async def _prepare(self, link: _Link) -> None:
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
            await self._send(link, "session.logon", self._signed_params(link, {}, force_signature=True))
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

    def _retire(self, link: _Link) -> None:
        """Close a rolled-over connection once the requests already sent on it have their replies."""

        async def drain() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(*(e.future for e in link.pending.values()), return_exceptions=True),
                    self.request_timeout,
                )
            await self._shut(link, NetworkError("connection rolled over"))

        task = asyncio.create_task(drain(), name="wsapi-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _shut(self, link: _Link, error: ExchangeError) -> None:
        link.closing_error = link.closing_error or error
        self._fail_pending(link, link.closing_error)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.ws.close(), 3)
        if link.reader is not None and link.reader is not asyncio.current_task():
            await cancel_and_wait([link.reader])

    async def _read(self, link: _Link) -> None:
        error: ExchangeError
        try:
            async for frame in link.ws:
                self._on_frame(link, frame)
            code, reason = link.ws.close_code, link.ws.close_reason
            detail = f" (code {code}{': ' + reason if reason else ''})" if code is not None else ""
            error = NetworkError(f"the exchange closed the connection{detail}")
        except ConnectionClosed as exc:
            error = _closed_error(exc, self.max_frame_size)
        except Exception as exc:  # never let a reader die silently with requests waiting
            log.exception("reader failed")
            error = ProtocolError(f"reader failed: {_describe(exc)}")
        if link.closing_error is None:
            log.info("connection lost: %s", error)
        link.closing_error = link.closing_error or error
        self._fail_pending(link, link.closing_error)
        if self._link is link:
            self._link = None

    def _on_frame(self, link: _Link, frame: str | bytes) -> None:
        try:
            message = json.loads(frame, parse_float=Decimal)
        except ValueError:
            # Which request it answered is unknowable: fail them all rather than let them time out.
            # Which request it answered is readable when the frame begins as replies do ({"id": 7, ...): that one
            # fails, and the others' replies still count. Otherwise every request waiting on the connection fails,
            # rather than time out.
            error = ProtocolError("the exchange sent a frame that is not JSON")
            spoiled = _FRAME_ID.match(frame if isinstance(frame, str) else frame.decode("utf-8", "replace"))
            entry = link.pending.pop(spoiled.group(1).strip('"'), None) if spoiled else None
            if entry is None:
                self._fail_pending(link, error)
            elif not entry.future.done():
                entry.future.set_exception(error)
            return
        if not isinstance(message, dict):
            self._fail_pending(link, ProtocolError("the exchange sent JSON that is not an object"))
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
            self._fail_pending(link, self._classify_error(message, method="(any)"))
            return
        entry = link.pending.pop(str(message["id"]), None)
        if entry is None:
            log.warning("dropped a reply to an unknown id %r", message["id"])
            return
        self._learn_weight(link, entry, message)  # here, in the order the exchange answered
        if not entry.future.done():
            entry.future.set_result(message)

    def _learn_weight(self, link: _Link, entry: _Pending, message: Mapping[str, Any]) -> None:
        """What the request cost, from this reply's count beside the last one's on this connection; the ledger's
        booking of it corrected to what the method is now known to cost."""
        limit = _request_weight(message)
        if limit is None:
            return
        now, slack = self.server_time_ms(), self.clock_uncertainty_ms
        window = window_of(now - slack, limit.window_ms)
        sure = window == window_of(now + slack, limit.window_ms)  # not within the clock's doubt of an edge
        last, link.last_count = link.last_count, (window, limit.count) if sure else None
        if sure and last is not None and last[0] == window and limit.count >= last[1]:
            self.weights.observe(entry.method, limit.count - last[1])
        cost = self.weights.of(entry.method)
        if cost != entry.booked:
            self._ledger.correct(entry.booking, cost)
            entry.booked = cost

    @staticmethod
    def _fail_pending(link: _Link, error: ExchangeError) -> None:
        pending, link.pending = link.pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(error)

    # -- requests ---------------------------------------------------------------------------------------------

    async def request(
        self, method: str, params: Mapping[str, ParamValue] | None = None, *, security: Security = "none"
    ) -> Reply:
        """Send one request and return its reply; signed requests that meet -1021 are re-timed and sent once more."""
        self._check_gate()
        if self._link is None or self._needs_rollover(self._link):
            await self.connect()
        link = self._link
        if link is None:
            raise NetworkError("the connection closed while it was being opened")
        try:
            return await self._send(link, method, self._params(link, params, security))
        except ClockSkew:
            if security != "signed":
                raise
            log.info("-1021 on %s: re-measuring the clock and retrying once", method)
            await self.sync_clock()
            link = self._link
            if link is None:
                raise
            return await self._send(link, method, self._params(link, params, security))

    def _params(
        self, link: _Link, params: Mapping[str, ParamValue] | None, security: Security
    ) -> dict[str, ParamValue]:
        out = dict(params or {})
        if security == "api_key":
            out["apiKey"] = self._require_credentials().api_key
        elif security == "signed":
            out = self._signed_params(link, out)
        return out

    def _signed_params(
        self, link: _Link, params: dict[str, ParamValue], *, force_signature: bool = False
    ) -> dict[str, ParamValue]:
        creds = self._require_credentials()
        params["timestamp"] = self.server_time_ms()
        if self.recv_window is not None:
            params["recvWindow"] = self.recv_window
        if link.session and not force_signature:
            return params  # a logged-on session authenticates the request (PROTOCOL.md §3)
        params["apiKey"] = creds.api_key
        params["signature"] = creds.signer.sign(signing_text(params))
        return params

    def _require_credentials(self) -> Credentials:
        if self.credentials is None:
            raise CredentialsRejected("this request needs an API key and none is configured")
        return self.credentials

    def _check_gate(self) -> None:
        """Refuse to send while a 429/418 says to wait: the first 429 stops us, a second could get us banned."""
        if self.blocked_until_ms and self.server_time_ms() < self.blocked_until_ms:
            raise RateLimited(
                "waiting for the exchange's rate limit to reset",
                status=418 if self._banned else 429,
                code=RATE_LIMIT_CODE,
                retry_at_ms=self.blocked_until_ms,
                banned=self._banned,
            )

    async def _send(self, link: _Link, method: str, params: dict[str, ParamValue]) -> Reply:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        frame = json.dumps({"id": request_id, "method": method, "params": params}, separators=(",", ":"))
        # RTT on the loop's own clock: it is about the network, not about the (injectable) wall clock.
        started = asyncio.get_running_loop().time()
        # Booked before it goes out: a budget check that runs while this request is in flight must see it.
        weight = self.weights.of(method)
        entry = _Pending(future, method, self._book(weight), weight)
        link.pending[str(request_id)] = entry
        try:
            await link.ws.send(frame)
        except ConnectionClosed as exc:
            link.pending.pop(str(request_id), None)
            if future.done() and not future.cancelled():
                future.exception()  # the reader failed it already; this raise reports it
            raise link.closing_error or _closed_error(exc, self.max_frame_size) from None
        try:
            message = await asyncio.wait_for(future, self.request_timeout)
        except TimeoutError:
            link.pending.pop(str(request_id), None)
            # A server that lets a request go unanswered is not to be trusted with the next one.
            if self._link is link:
                self._link = None
            await self._shut(link, NetworkError(f"no reply from the exchange within {self.request_timeout:g} s"))
            raise NetworkError(
                f"no reply to {method} within {self.request_timeout:g} s", retry_in=self.backoff.base
            ) from None
        rtt_ms = round((asyncio.get_running_loop().time() - started) * 1000)
        weight_reading = self._read_weight(message, entry)
        status = message.get("status")
        if status == 200 and "result" in message:
            return Reply(method=method, result=message["result"], weight=weight_reading, rtt_ms=rtt_ms)
        raise self._classify_error(message, method=method)

    def _read_weight(self, message: Mapping[str, Any], entry: _Pending) -> WeightReading | None:
        """The reply's weight reading, beside what this client had spent in the window up to this request (as the
        exchange's counts have corrected it)."""
        limit = _request_weight(message)
        if limit is None:
            return None
        now = self.server_time_ms()
        self._ledger.window_ms = limit.window_ms
        # The exchange's count includes this request; ours cannot exceed it (an edge of the window, a request
        # booked in both windows): "this app 13, IP 12" would be a meter contradicting itself.
        return WeightReading(
            count=limit.count,
            limit=limit.limit,
            own=min(self._ledger.own_upto(entry.booking, now), limit.count),
            resets_at_ms=limit.resets_at_ms(now),
            server_time_ms=now,
        )

    def _classify_error(self, message: Mapping[str, Any], *, method: str) -> ExchangeError:
        status = message.get("status")
        error = message.get("error")
        if not isinstance(status, int) or not isinstance(error, dict):
            return ProtocolError(f"reply to {method} has neither a result nor an error")
        code = error.get("code") if isinstance(error.get("code"), int) else None
        text = str(error.get("msg", "")) or f"status {status}"
        if status in (418, 429) or code == RATE_LIMIT_CODE:
            data = error.get("data")
            data = data if isinstance(data, dict) else {}
            retry_at = _retry_at_ms(data, text)
            if retry_at is None:
                # No hint given: a 429 lasts to the end of the fixed window; a ban at least two minutes.
                now = self.server_time_ms()
                retry_at = (now // 60_000 + 1) * 60_000 if status != 418 else now + 120_000
            return self._rate_limited(status, code, text, retry_at - self.server_time_ms())
        if status == 401 or code in CREDENTIAL_CODES:
            return CredentialsRejected(text, status=status, code=code)
        if code == CLOCK_CODE:
            return ClockSkew(text, status=status, code=code)
        if status >= 500 or code in SERVER_CODES:
            return ServerError(text, status=status, code=code)
        if status == 403:
            return RequestRejected(because("blocked by the exchange's firewall", text), status=status, code=code)
        return RequestRejected(because(f"{method} rejected", text), status=status, code=code)

    def _rate_limited(self, status: int, code: int | None, text: str, wait_ms: int) -> RateLimited:
        retry_at = self.server_time_ms() + max(1_000, wait_ms)
        self.blocked_until_ms = max(self.blocked_until_ms, retry_at)
        self._banned = status == 418
        self._next_connect_at = max(self._next_connect_at, self.clock.monotonic() + wait_ms / 1000)
        log.warning("rate limited (%s): nothing sent until %d", status, self.blocked_until_ms)
        return RateLimited(text, status=status, code=code, retry_at_ms=self.blocked_until_ms, banned=self._banned)

    # -- clock ------------------------------------------------------------------------------------------------

    async def sync_clock(self) -> int:
        """Re-measure the offset between this machine's clock and the exchange's; returns it in ms."""
        self._clock_measured_at = None
        if self._link is None:
            await self.connect()  # a new connection measures it, being due
            return self.clock_offset_ms
        await self._sync_clock(self._link)
        return self.clock_offset_ms

    async def _sync_clock(self, link: _Link) -> None:
        sent = self.clock.time_ms()
        try:
            reply = await self._send(link, "session.status", {})
            server_time = reply.result.get("serverTime") if isinstance(reply.result, dict) else None
        except RequestRejected:
            server_time = None
        received = self.clock.time_ms()
        self._clock_measured_at = self.clock.monotonic()  # tried: not again before it is due
        if not isinstance(server_time, int) and self.time_url is not None:
            sent = self.clock.time_ms()
            server_time = await asyncio.to_thread(_http_server_time, self.time_url, self.connect_timeout)
            received = self.clock.time_ms()
        if not isinstance(server_time, int):
            log.warning("the exchange gave no server time: using the local clock")
            return
        self.clock_offset_ms = server_time - (sent + received) // 2
        self.clock_uncertainty_ms = (received - sent + 1) // 2
        log.info("clock offset %+d ms (± %d ms)", self.clock_offset_ms, self.clock_uncertainty_ms)

    # -- methods ----------------------------------------------------------------------------------------------

    async def account_balance(self, *, v2: bool = True) -> list[BalanceRow]:
        """``v2/account.balance`` (or the v1 seed): one row per asset. Weight 5."""
        return (await self.fetch_account_balance(v2=v2)).value

    async def fetch_account_balance(self, *, v2: bool = True) -> Fetched[list[BalanceRow]]:
        """:meth:`account_balance` with its reply's weight reading and round trip."""
        method = "v2/account.balance" if v2 else "account.balance"
        reply = await self.request(method, security="signed")
        return Fetched(_validate_list(BalanceRow, reply.result, method), reply.weight, reply.rtt_ms, method)

    async def account_status(self, *, v2: bool = False) -> AccountStatus:
        """``account.status`` (v1: has ``multiAssetsMargin``; lists every symbol) or ``v2/account.status``. Weight 5."""
        return (await self.fetch_account_status(v2=v2)).value

    async def fetch_account_status(self, *, v2: bool = False) -> Fetched[AccountStatus]:
        """:meth:`account_status` with its reply's weight reading and round trip."""
        method = "v2/account.status" if v2 else "account.status"
        reply = await self.request(method, security="signed")
        try:
            status = AccountStatus.model_validate(reply.result)
        except ValidationError as exc:
            raise ProtocolError(f"{method}: unexpected reply: {_first_error(exc)}") from None
        return Fetched(status, reply.weight, reply.rtt_ms, method)

    async def fetch_positions(self) -> Fetched[list[Position]]:
        """``v2/account.position``: the symbols with a position or open orders (weight 5); closed rows dropped."""
        method = "v2/account.position"
        reply = await self.request(method, security="signed")
        if not isinstance(reply.result, list):
            raise ProtocolError(f"{method}: expected a list of positions, got {type(reply.result).__name__}")
        try:
            positions = [Position.model_validate(row) for row in reply.result]
        except ValidationError as exc:
            raise ProtocolError(f"{method}: unexpected reply: {_first_error(exc)}") from None
        return Fetched([p for p in positions if p.position_amt], reply.weight, reply.rtt_ms, method)

    async def session_logon(self) -> dict[str, Any]:
        link = self._link
        if link is None:
            await self.connect()
            link = self._link
        if link is None:
            raise NetworkError("not connected")
        reply = await self._send(link, "session.logon", self._signed_params(link, {}, force_signature=True))
        link.session = True
        return _as_dict(reply.result, "session.logon")

    async def session_status(self) -> dict[str, Any]:
        return _as_dict((await self.request("session.status")).result, "session.status")

    async def session_logout(self) -> dict[str, Any]:
        reply = await self.request("session.logout")
        if self._link is not None:
            self._link.session = False
        return _as_dict(reply.result, "session.logout")

    async def user_data_stream_start(self) -> str:
        """Start (or extend) the user-data stream; returns the listen key. Weight 1."""
        reply = await self.request("userDataStream.start", security="api_key")
        return _listen_key(reply.result, "userDataStream.start")

    async def user_data_stream_ping(self) -> str:
        reply = await self.request("userDataStream.ping", security="api_key")
        return _listen_key(reply.result, "userDataStream.ping")

    async def user_data_stream_stop(self) -> None:
        await self.request("userDataStream.stop", security="api_key")


def _request_weight(message: Mapping[str, Any]) -> RateLimit | None:
    """The REQUEST_WEIGHT entry of a reply's ``rateLimits`` (None when the reply carries none)."""
    limits = message.get("rateLimits")
    if not isinstance(limits, list):
        return None
    for entry in limits:
        try:
            limit = RateLimit.model_validate(entry)
        except ValidationError:
            continue
        if limit.rate_limit_type == "REQUEST_WEIGHT":
            return limit
    return None


#: The id at the start of a reply that is not JSON (a frame cut short): which request it answered.
_FRAME_ID = re.compile(r'\s*\{\s*"id"\s*:\s*(-?\d+|"[^"]*")\s*,')


def _validate_list(model: type[BalanceRow], result: Any, method: str) -> list[BalanceRow]:
    if not isinstance(result, list):
        raise ProtocolError(f"{method}: expected a list of balances, got {type(result).__name__}")
    try:
        return [model.model_validate(row) for row in result]
    except ValidationError as exc:
        raise ProtocolError(f"{method}: unexpected reply: {_first_error(exc)}") from None


def _as_dict(result: Any, method: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise ProtocolError(f"{method}: expected an object, got {type(result).__name__}")
    return result


def _listen_key(result: Any, method: str) -> str:
    key = _as_dict(result, method).get("listenKey")
    if not isinstance(key, str) or not key:
        raise ProtocolError(f"{method}: no listenKey in the reply")
    return key


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"


def _retry_at_ms(data: Mapping[str, Any], text: str) -> int | None:
    """When a 429/418 says to come back: ``error.data.retryAfter`` if sent, else the time in the message."""
    retry_after = data.get("retryAfter")
    if isinstance(retry_after, int) and retry_after > 0:
        return retry_after
    match = _BANNED_UNTIL.search(text)
    return int(match.group(1)) if match else None


def _closed_error(exc: ConnectionClosed, max_frame_size: int) -> ExchangeError:
    sent, rcvd = exc.sent, exc.rcvd
    if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
        return ProtocolError(f"the exchange sent a frame larger than {max_frame_size} bytes")
    if rcvd is not None:
        reason = f": {rcvd.reason}" if rcvd.reason else ""
        return NetworkError(f"the exchange closed the connection (code {rcvd.code}{reason})")
    return NetworkError("the connection dropped")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _http_server_time(url: str, timeout: float) -> int | None:
    """``GET /fapi/v1/time`` → ``serverTime``: the fallback clock probe when ``session.status`` is not there."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read(), parse_float=Decimal)
    except (OSError, ValueError):
        return None
    value = body.get("serverTime") if isinstance(body, dict) else None
    return value if isinstance(value, int) else None
