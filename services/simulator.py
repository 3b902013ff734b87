"""An exchange simulator: the futures WebSocket API, the user-data stream and the server-time endpoint on loopback.

It is faithful where a client can tell: real signature and timestamp checks (PROTOCOL.md §3), real weights in fixed
per-minute windows with 429 and escalating 418 bans (§5), the exchange's error replies and codes (§7), valid JSON
only. Fault modes are switched on at run time (:class:`Faults`) so tests can show how a client copes. It runs in
process (tests, ``balance-tui --demo``) or alone (``balance-tui sim``), and traders may point their own bots at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from services.clock import SYSTEM_CLOCK, Clock
from services.signing import param_text, verify, verify_hmac
from services.wsapi import HANDSHAKE_WEIGHT, MAX_RECV_WINDOW, METHOD_WEIGHTS

log = logging.getLogger("balance_tui.simulator")

EIGHT = Decimal("0.00000001")
LISTEN_KEY_LIFETIME_MS = 60 * 60 * 1000
MAX_BAN_MS = 3 * 24 * 3600 * 1000

SIGNED_METHODS = frozenset({"account.balance", "v2/account.balance", "account.status", "v2/account.status"})


#: Wide enough for any balance a test or a trader can type: the default 28 digits cannot quantize a 21-digit
#: balance to 8 places.
WIDE = Context(prec=200, Emax=999_999, Emin=-999_999)


def amount(value: Decimal) -> str:
    """An amount as the exchange writes it: a string with 8 decimal places."""
    return f"{value.quantize(EIGHT, rounding=ROUND_HALF_EVEN, context=WIDE):f}"


@dataclass
class Faults:
    """Switchable misbehaviour. Counters (``*_next``) apply to that many coming requests, then wear off."""

    drop_next: int = 0  # abort the TCP connection on receiving a request, no reply, no close frame
    close_next: int = 0  # close the connection with ``close_code`` on receiving a request
    close_code: int = 1001
    silent: bool = False  # read requests, never answer
    malformed_next: int = 0  # answer with text that is not JSON
    wrong_shape_next: int = 0  # answer valid JSON of the wrong shape
    bad_amount_next: int = 0  # answer with an amount that is not a number
    oversized_next: int = 0  # answer with a frame of ``oversized_bytes``
    oversized_bytes: int = 9 * 1024 * 1024
    shutdown_notice_next: int = 0  # send a serverShutdown event before the reply
    clock_skew_ms: int = 0  # the server's clock runs this far ahead of the machine's
    retry_after_in_errors: bool = True  # 429/418 replies carry error.data.retryAfter [open: spot does]
    close_on_ban: bool = True  # a 418 also closes the socket [open: spot does]
    logon_skew_next: int = 0  # refuse the next N session.logon with -1021, as a clock not yet measured would get
    stream_mute: bool = False  # user-data streams stay open and deliver nothing, while balances still change


@dataclass
class SimKey:
    """An API key the simulated exchange knows: an HMAC secret or a public key."""

    api_key: str
    secret: str | None = field(default=None, repr=False)
    public_key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey | None = None
    revoked: bool = False

    @property
    def kind(self) -> str:
        if self.secret is not None:
            return "hmac"
        return "ed25519" if isinstance(self.public_key, ed25519.Ed25519PublicKey) else "rsa"


@dataclass
class SimAsset:
    """One asset of the simulated account."""

    asset: str
    wallet: Decimal
    price: Decimal  # in USD, for Multi-Assets totals
    unrealized: Decimal = Decimal(0)
    initial_margin: Decimal = Decimal(0)
    maint_margin: Decimal = Decimal(0)
    margin_eligible: bool = True
    update_time: int = 0


@dataclass(eq=False)
class _ApiConnection:
    ws: ServerConnection
    connected_at_ms: int
    return_rate_limits: bool = True
    session_key: str | None = None
    authorized_since: int | None = None


class SimulatedAccount:
    """A believable futures account: several assets, positions whose unrealized PnL moves, either margin mode."""

    def __init__(self, *, multi_assets: bool = False, seed: int = 7, symbols: int = 60) -> None:
        self.multi_assets = multi_assets
        self.alias = "SgsR"
        self.rng = random.Random(seed)
        self.assets: dict[str, SimAsset] = {}
        self.symbols = [f"SYM{i:03d}USDT" for i in range(symbols)]
        for name, wallet, price, eligible in (
            ("USDT", "122607.35137903", "1", True),
            ("USDC", "25000.00000000", "0.99990000", True),
            ("BTC", "0.75000000", "96412.30000000", True),
            ("ETH", "4.20000000", "3421.55000000", True),
            ("BNB", "12.00000000", "712.40000000", True),
            ("FDUSD", "0.00000000", "1", True),
        ):
            self.assets[name] = SimAsset(name, Decimal(wallet), Decimal(price), margin_eligible=eligible)
        usdt = self.assets["USDT"]
        usdt.unrealized = Decimal("-1.21000000")
        usdt.initial_margin = Decimal("4315.12000000")
        usdt.maint_margin = Decimal("215.75600000")
        self.assets["BTC"].unrealized = Decimal("0.00042000")
        self.assets["BTC"].initial_margin = Decimal("0.01100000")
        self.assets["BTC"].maint_margin = Decimal("0.00055000")

    def set_time(self, now_ms: int) -> None:
        for asset in self.assets.values():
            if not asset.update_time and asset.wallet:
                asset.update_time = now_ms

    def tick(self, now_ms: int) -> None:
        """Move unrealized PnL a little, as marks move."""
        for asset in self.assets.values():
            if asset.initial_margin:
                step = Decimal(self.rng.randint(-250, 250)) / Decimal(100) * (asset.initial_margin / 500)
                asset.unrealized = (asset.unrealized + step).quantize(EIGHT)
                asset.update_time = now_ms

    def add_assets(self, count: int) -> None:
        """More assets, for tests of wide accounts (40 rows and beyond)."""
        for i in range(count):
            name = f"AS{i:03d}"
            self.assets[name] = SimAsset(name, Decimal(self.rng.randint(0, 10**8)) / 1000, Decimal(1))

    # -- what the exchange reports --------------------------------------------------------------------------

    def _available(self, asset: SimAsset) -> Decimal:
        return max(Decimal(0), asset.wallet + min(asset.unrealized, Decimal(0)) - asset.initial_margin)

    def _totals_usd(self) -> dict[str, Decimal]:
        members = [a for a in self.assets.values() if a.margin_eligible] if self.multi_assets else [self.assets["USDT"]]

        def total(get: Callable[[SimAsset], Decimal]) -> Decimal:
            return sum((get(a) * (a.price if self.multi_assets else 1) for a in members), Decimal(0))

        wallet = total(lambda a: a.wallet)
        unrealized = total(lambda a: a.unrealized)
        initial = total(lambda a: a.initial_margin)
        return {
            "totalInitialMargin": initial,
            "totalMaintMargin": total(lambda a: a.maint_margin),
            "totalWalletBalance": wallet,
            "totalUnrealizedProfit": unrealized,
            "totalMarginBalance": wallet + unrealized,
            "totalPositionInitialMargin": initial,
            "totalOpenOrderInitialMargin": Decimal(0),
            "totalCrossWalletBalance": wallet,
            "totalCrossUnPnl": unrealized,
            "availableBalance": max(Decimal(0), wallet + min(unrealized, Decimal(0)) - initial),
            "maxWithdrawAmount": max(Decimal(0), wallet + min(unrealized, Decimal(0)) - initial),
        }

    def _asset_available(self, asset: SimAsset, totals: Mapping[str, Decimal]) -> tuple[Decimal, Decimal]:
        if self.multi_assets and asset.margin_eligible:
            # As in the docs' examples: each margin asset repeats the account-level USD figure.
            available = totals["availableBalance"]
            return available, min(asset.wallet, available / asset.price)
        own = self._available(asset)
        return own, own

    def balance_rows(self) -> list[dict[str, Any]]:
        totals = self._totals_usd()
        rows = []
        for a in self.assets.values():
            available, max_withdraw = self._asset_available(a, totals)
            rows.append(
                {
                    "accountAlias": self.alias,
                    "asset": a.asset,
                    "balance": amount(a.wallet),
                    "crossWalletBalance": amount(a.wallet),
                    "crossUnPnl": amount(a.unrealized),
                    "availableBalance": amount(available),
                    "maxWithdrawAmount": amount(max_withdraw),
                    "marginAvailable": a.margin_eligible if self.multi_assets else a.asset == "USDT",
                    "updateTime": a.update_time,
                }
            )
        return rows

    def status(self, *, v2: bool) -> dict[str, Any]:
        totals = self._totals_usd()
        assets = []
        for a in self.assets.values():
            available, max_withdraw = self._asset_available(a, totals)
            row: dict[str, Any] = {
                "asset": a.asset,
                "walletBalance": amount(a.wallet),
                "unrealizedProfit": amount(a.unrealized),
                "marginBalance": amount(a.wallet + a.unrealized),
                "maintMargin": amount(a.maint_margin),
                "initialMargin": amount(a.initial_margin),
                "positionInitialMargin": amount(a.initial_margin),
                "openOrderInitialMargin": amount(Decimal(0)),
                "crossWalletBalance": amount(a.wallet),
                "crossUnPnl": amount(a.unrealized),
                "availableBalance": amount(available),
                "maxWithdrawAmount": amount(max_withdraw),
                "updateTime": a.update_time,
            }
            if self.multi_assets:
                row["marginAvailable"] = a.margin_eligible
            assets.append(row)
        result: dict[str, Any] = {name: amount(value) for name, value in totals.items()}
        positions = [
            {"symbol": s, "positionSide": "BOTH", "positionAmt": "0.000", "unrealizedProfit": "0.00000000"}
            for s in (self.symbols[:2] if v2 else self.symbols)
        ]
        if not v2:
            result.update(
                feeTier=0,
                canTrade=True,
                canDeposit=True,
                canWithdraw=True,
                updateTime=0,
                multiAssetsMargin=self.multi_assets,
                tradeGroupId=-1,
            )
        result["assets"] = assets
        result["positions"] = positions
        return result


class _Refusal(Exception):
    """An error reply to the request at hand."""

    def __init__(self, status: int, code: int, msg: str, *, to_null_id: bool = False) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.to_null_id = status, code, msg, to_null_id


class ExchangeSimulator:
    """The simulated exchange. ``async with ExchangeSimulator() as sim:`` serves on a free loopback port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = SYSTEM_CLOCK,
        account: SimulatedAccount | None = None,
        weight_limit: int = 2400,
        max_connection_age: float = 24 * 3600.0,
        ban_after_429s: int = 3,
        max_frame_size: int = 1024 * 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.account = account or SimulatedAccount()
        self.weight_limit = weight_limit
        self.max_connection_age = max_connection_age
        self.ban_after_429s = ban_after_429s
        self.max_frame_size = max_frame_size
        self.faults = Faults()
        self.keys: dict[str, SimKey] = {}
        self.sessions_enabled = True  # off: session.logon is refused, as for a key type that cannot log on
        self.last_params: dict[str, Any] = {}  # params of the last request, signature and all (keys are test keys)
        self.others_per_window = 0  # weight "other programs on the IP" spend at the start of every window
        self.banned_until_ms = 0
        self.bans = 0
        self.handshakes = 0
        # (server time, method) of the requests received, the latest 50,000: a demo left open all day stays small.
        self.requests: deque[tuple[int, str]] = deque(maxlen=50_000)
        self.last_result: dict[str, Any] = {}
        self.listen_keys: dict[str, tuple[str, int]] = {}  # listen key → (api key, expires at)
        self._windows: dict[int, int] = {}
        self._own: dict[int, int] = {}
        self._excess: dict[int, int] = {}
        self._api: set[_ApiConnection] = set()
        self._streams: dict[str, set[ServerConnection]] = {}
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.account.set_time(self.server_time_ms())

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def __aenter__(self) -> ExchangeSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=self.max_frame_size,
            ping_interval=180,  # the exchange pings every 3 minutes (PROTOCOL.md §1)
            ping_timeout=600,
        )
        socket = next(iter(self._server.sockets))
        self.port = socket.getsockname()[1]
        log.info("simulator listening on %s", self.ws_url)

    async def stop(self) -> None:
        """Stop serving and drop every connection (the port can be served again by a new simulator)."""
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws-fapi/v1"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def time_url(self) -> str:
        return f"http://{self.host}:{self.port}/fapi/v1/time"

    def server_time_ms(self) -> int:
        return self.clock.time_ms() + self.faults.clock_skew_ms

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- keys -------------------------------------------------------------------------------------------------

    def add_hmac_key(self, api_key: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """Register an HMAC key; returns (api key, secret), made up when not given."""
        api_key = api_key or secrets.token_hex(32)
        secret = secret or secrets.token_hex(32)
        self.keys[api_key] = SimKey(api_key, secret=secret)
        return api_key, secret

    def add_public_key(
        self, public_key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey, api_key: str | None = None
    ) -> str:
        """Register an Ed25519 or RSA public key; returns its API key."""
        api_key = api_key or secrets.token_hex(32)
        self.keys[api_key] = SimKey(api_key, public_key=public_key)
        return api_key

    def revoke_key(self, api_key: str) -> None:
        """Revoke a key: the next request of any connection using it is answered with ``id: null`` -2015."""
        self.keys[api_key].revoked = True

    # -- weight -----------------------------------------------------------------------------------------------

    def _window(self) -> int:
        return self.server_time_ms() // 60_000

    def weight_count(self) -> int:
        """The IP's request weight in the current window, other programs included."""
        return self._windows.get(self._window(), self.others_per_window)

    def own_weight(self, window: int | None = None) -> int:
        """Weight spent by clients of this simulator (not by "other programs") in a window."""
        return self._own.get(self._window() if window is None else window, 0)

    def spend_weight(self, weight: int) -> None:
        """Weight spent now by other programs on the same IP."""
        window = self._window()
        self._windows[window] = self.weight_count() + weight

    def _charge(self, weight: int) -> int:
        window = self._window()
        self._windows[window] = self.weight_count() + weight
        self._own[window] = self._own.get(window, 0) + weight
        for old in [w for w in self._windows if w < window - 60]:
            self._windows.pop(old, None)
            self._own.pop(old, None)
            self._excess.pop(old, None)
        return self._windows[window]

    def ban(self, seconds: float) -> None:
        """Ban the IP now for this long (418 on every request and on every handshake)."""
        self.banned_until_ms = self.server_time_ms() + round(seconds * 1000)
        self.bans += 1

    def _escalate(self) -> None:
        duration = min(MAX_BAN_MS, 120_000 * 2**self.bans)
        self.banned_until_ms = self.server_time_ms() + duration
        self.bans += 1
        log.warning("IP banned until %d", self.banned_until_ms)

    # -- HTTP side --------------------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/fapi/v1/time":
            return _json_response(200, {"serverTime": self.server_time_ms()})
        if self.server_time_ms() < self.banned_until_ms:
            retry = max(1, (self.banned_until_ms - self.server_time_ms()) // 1000)
            response = _json_response(418, {"code": -1003, "msg": f"IP banned until {self.banned_until_ms}."})
            response.headers["Retry-After"] = str(retry)
            return response
        if url.path == "/ws-fapi/v1":
            self.handshakes += 1
            self._charge(HANDSHAKE_WEIGHT)
            return None
        if url.path.startswith("/private/ws/"):
            return None  # accepted, whatever the key: production then delivers nothing on this form
        if url.path in ("/private/ws", "/private/stream"):
            key = self._stream_key(url.path, url.query)
            if key is None or not self._listen_key_alive(key):
                return _json_response(400, {"code": -1125, "msg": "This listenKey does not exist."})
            return None
        return _json_response(404, {"code": -1, "msg": f"no such endpoint: {url.path}"})

    @staticmethod
    def _stream_key(path: str, query: str) -> str | None:
        if path.startswith("/private/ws/"):
            return path.removeprefix("/private/ws/") or None
        keys = parse_qs(query).get("listenKey")
        return keys[0] if keys else None

    # -- connections ------------------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        if url.path.startswith("/private/"):
            await self._serve_stream(ws, url.path, url.query)
        else:
            query = parse_qs(url.query)
            conn = _ApiConnection(
                ws,
                connected_at_ms=self.server_time_ms(),
                return_rate_limits=query.get("returnRateLimits", ["true"])[0] != "false",
            )
            await self._serve_api(conn)

    async def _serve_api(self, conn: _ApiConnection) -> None:
        self._api.add(conn)
        lifetime = asyncio.create_task(self._expire_after(conn.ws, self.max_connection_age))
        try:
            async for frame in conn.ws:
                if not await self._on_request(conn, frame):
                    break
        except ConnectionClosed:
            pass
        finally:
            lifetime.cancel()
            self._api.discard(conn)

    async def _expire_after(self, ws: ServerConnection, seconds: float) -> None:
        await self.clock.sleep(seconds)
        await ws.close(1000, "connection lifetime exceeded")

    async def _on_request(self, conn: _ApiConnection, frame: str | bytes) -> bool:
        """Answer one request; False once the connection is to be dropped."""
        faults = self.faults
        try:
            message = json.loads(frame, parse_float=Decimal)
        except ValueError:
            await self._send(conn, None, 400, error=(-1102, "Request is not valid JSON."))
            return True
        if not isinstance(message, dict):
            await self._send(conn, None, 400, error=(-1102, "Request is not a JSON object."))
            return True
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params") or {}
        self.requests.append((self.server_time_ms(), str(method)))
        self.last_params = dict(params) if isinstance(params, dict) else {}
        if faults.drop_next:
            faults.drop_next -= 1
            conn.ws.transport.abort()
            return False
        if faults.close_next:
            faults.close_next -= 1
            await conn.ws.close(faults.close_code, "going away")
            return False
        if faults.silent:
            return True
        if faults.shutdown_notice_next:
            faults.shutdown_notice_next -= 1
            await conn.ws.send(json.dumps({"event": {"e": "serverShutdown", "E": self.server_time_ms()}}))
        count = self._charge(METHOD_WEIGHTS.get(str(method), 1))
        try:
            self._check_rate(count)
            if not isinstance(method, str) or not isinstance(params, dict):
                raise _Refusal(400, -1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
            result = self._dispatch(conn, method, params)
        except _Refusal as refusal:
            data = None
            if refusal.status in (418, 429) and faults.retry_after_in_errors:
                retry = self.banned_until_ms if refusal.status == 418 else (self._window() + 1) * 60_000
                data = {"serverTime": self.server_time_ms(), "retryAfter": retry}
            await self._send(
                conn,
                None if refusal.to_null_id else request_id,
                refusal.status,
                error=(refusal.code, refusal.msg),
                data=data,
            )
            if refusal.status == 418 and faults.close_on_ban:
                await conn.ws.close(1008, "IP banned")
                return False
            return True
        self.last_result[method] = result
        await self._send(conn, request_id, 200, result=result)
        return True

    def _check_rate(self, count: int) -> None:
        now = self.server_time_ms()
        if now < self.banned_until_ms:
            raise _Refusal(
                418,
                -1003,
                f"Way too many requests; IP(127.0.0.1) banned until {self.banned_until_ms}. "
                "Please use the websocket for live updates to avoid bans.",
            )
        if count > self.weight_limit:
            window = self._window()
            self._excess[window] = self._excess.get(window, 0) + 1
            if self._excess[window] > self.ban_after_429s:
                self._escalate()
                self._check_rate(count)
            raise _Refusal(
                429,
                -1003,
                f"Too many requests; current limit of IP(127.0.0.1) is {self.weight_limit} requests per minute. "
                "Please use the websocket for live updates to avoid polling the API.",
            )

    async def _send(
        self,
        conn: _ApiConnection,
        request_id: Any,
        status: int,
        *,
        result: Any = None,
        error: tuple[int, str] | None = None,
        data: dict[str, int] | None = None,
    ) -> None:
        reply: dict[str, Any] = {"id": request_id, "status": status}
        if error is None:
            reply["result"] = result
        else:
            reply["error"] = {"code": error[0], "msg": error[1], **({"data": data} if data else {})}
        if conn.return_rate_limits:
            reply["rateLimits"] = [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                    "count": self.weight_count(),
                }
            ]
        text = self._apply_reply_faults(reply)
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(text)

    def _apply_reply_faults(self, reply: dict[str, Any]) -> str:
        faults = self.faults
        if faults.malformed_next:
            faults.malformed_next -= 1
            return '{"id": ' + json.dumps(reply["id"]) + ', "status": 200, "result": [{"asset": "USDT", "bal'
        if faults.wrong_shape_next:
            faults.wrong_shape_next -= 1
            reply = {**reply, "result": {"unexpected": True}}
        if faults.bad_amount_next and isinstance(reply.get("result"), list | dict):
            faults.bad_amount_next -= 1
            reply = {**reply, "result": _spoil_amount(reply["result"])}
        text = json.dumps(reply, separators=(",", ":"), default=_json_default)
        if faults.oversized_next:
            faults.oversized_next -= 1
            padding = "x" * max(0, faults.oversized_bytes - len(text))
            text = text[:-1] + ',"padding":"' + padding + '"}'
        return text

    # -- methods ----------------------------------------------------------------------------------------------

    def _dispatch(self, conn: _ApiConnection, method: str, params: dict[str, Any]) -> Any:
        self._check_revoked(conn, params)
        if method in SIGNED_METHODS:
            self._authenticate(conn, params)
            if method in ("account.balance", "v2/account.balance"):
                return self.account.balance_rows()
            return self.account.status(v2=method.startswith("v2/"))
        if method == "session.logon":
            if not self.sessions_enabled:
                raise _Refusal(400, -4056, "Invalid api key type.")
            if self.faults.logon_skew_next:
                self.faults.logon_skew_next -= 1
                raise _Refusal(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
            key = self._verify_signature(params)
            if key.kind != "ed25519":
                raise _Refusal(400, -4056, "Invalid api key type.")
            conn.session_key = key.api_key
            conn.authorized_since = self.server_time_ms()
            return self._session(conn)
        if method == "session.status":
            return self._session(conn)
        if method == "session.logout":
            conn.session_key = None
            conn.authorized_since = None
            return self._session(conn)
        if method in ("userDataStream.start", "userDataStream.ping", "userDataStream.stop"):
            return self._user_data_stream(conn, method, params)
        raise _Refusal(400, -1100, f"Unknown method '{method}'.")

    def _session(self, conn: _ApiConnection) -> dict[str, Any]:
        return {
            "apiKey": conn.session_key,
            "authorizedSince": conn.authorized_since,
            "connectedSince": conn.connected_at_ms,
            "returnRateLimits": conn.return_rate_limits,
            "serverTime": self.server_time_ms(),
        }

    def _check_revoked(self, conn: _ApiConnection, params: dict[str, Any]) -> None:
        for api_key in (conn.session_key, params.get("apiKey")):
            key = self.keys.get(api_key) if isinstance(api_key, str) else None
            if key is not None and key.revoked:
                conn.session_key = None
                raise _Refusal(401, -2015, "Invalid API-key, IP, or permissions for action.", to_null_id=True)

    def _authenticate(self, conn: _ApiConnection, params: dict[str, Any]) -> None:
        if conn.session_key is not None and "signature" not in params:
            self._check_timestamp(params)
            return
        self._verify_signature(params)

    def _known_key(self, params: dict[str, Any]) -> SimKey:
        api_key = params.get("apiKey")
        if not isinstance(api_key, str) or not api_key:
            raise _Refusal(400, -1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.")
        key = self.keys.get(api_key)
        if key is None:
            raise _Refusal(401, -2014, "API-key format invalid.")
        if key.revoked:
            raise _Refusal(401, -2015, "Invalid API-key, IP, or permissions for action.")
        return key

    def _verify_signature(self, params: dict[str, Any]) -> SimKey:
        key = self._known_key(params)
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            raise _Refusal(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        self._check_timestamp(params)
        text = "&".join(f"{name}={_param_value(params[name])}" for name in sorted(params) if name != "signature")
        if key.secret is not None:
            valid = verify_hmac(key.secret, text, signature)
        else:
            assert key.public_key is not None
            valid = verify(key.public_key, text, signature)
        if not valid:
            raise _Refusal(400, -1022, "Signature for this request is not valid.")
        return key

    def _check_timestamp(self, params: dict[str, Any]) -> None:
        timestamp = params.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise _Refusal(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        recv_window = params.get("recvWindow", 5000)
        if isinstance(recv_window, bool) or not isinstance(recv_window, int) or not 0 < recv_window <= MAX_RECV_WINDOW:
            raise _Refusal(400, -1130, "Data sent for parameter 'recvWindow' is not valid.")
        now = self.server_time_ms()
        if timestamp >= now + 1000:
            raise _Refusal(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise _Refusal(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _user_data_stream(self, conn: _ApiConnection, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if conn.session_key is not None and "apiKey" not in params:
            api_key = conn.session_key
        else:
            api_key = self._known_key(params).api_key
        now = self.server_time_ms()
        current = next((k for k, (owner, _) in self.listen_keys.items() if owner == api_key), None)
        if current is not None and not self._listen_key_alive(current):
            current = None
        if method == "userDataStream.start":
            key = current or secrets.token_urlsafe(48)
            self.listen_keys[key] = (api_key, now + LISTEN_KEY_LIFETIME_MS)
            return {"listenKey": key}
        if current is None:
            raise _Refusal(400, -1125, "This listenKey does not exist.")
        if method == "userDataStream.ping":
            self.listen_keys[current] = (api_key, now + LISTEN_KEY_LIFETIME_MS)
            return {"listenKey": current}
        self.listen_keys.pop(current, None)
        self._spawn(self._close_streams(current))
        return {}

    def _listen_key_alive(self, key: str) -> bool:
        entry = self.listen_keys.get(key)
        return entry is not None and entry[1] > self.server_time_ms()

    # -- user-data stream -------------------------------------------------------------------------------------

    async def _serve_stream(self, ws: ServerConnection, path: str, query: str) -> None:
        key = self._stream_key(path, query)
        assert key is not None
        # As production is reported to behave (PROTOCOL.md §1): the key as a path segment is accepted and then
        # delivers nothing; the query form delivers only the events named in ``events=`` (none named: nothing).
        events = parse_qs(query).get("events")
        wanted = set(events[0].split("/")) if events and not path.startswith("/private/ws/") else set()
        combined = path.startswith("/private/stream")
        subscribers = self._streams.setdefault(key, set())
        setattr(ws, "bt_filter", (wanted, combined))  # noqa: B010 (per-connection delivery options)
        subscribers.add(ws)
        lifetime = asyncio.create_task(self._expire_after(ws, self.max_connection_age))
        try:
            await ws.wait_closed()
        finally:
            lifetime.cancel()
            subscribers.discard(ws)

    async def _close_streams(self, key: str) -> None:
        for ws in list(self._streams.get(key, ())):
            await ws.close(1000, "listen key closed")

    async def push(self, event: dict[str, Any], *, listen_key: str | None = None) -> int:
        """Send one user-data event to the streams of a listen key (all, by default); returns how many got it."""
        sent = 0
        for key, subscribers in list(self._streams.items()):
            if listen_key is not None and key != listen_key:
                continue
            for ws in list(subscribers):
                wanted, combined = getattr(ws, "bt_filter", (set(), False))
                if self.faults.stream_mute or event.get("e") not in wanted:
                    continue
                payload = {"stream": key, "data": event} if combined else event
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps(payload, default=_json_default))
                    sent += 1
        return sent

    async def push_balance_change(self, asset: str, delta: Decimal | str, *, reason: str = "ORDER") -> dict[str, Any]:
        """Change an asset's wallet balance and push the ACCOUNT_UPDATE the exchange would send."""
        change = Decimal(delta)
        row = self.account.assets[asset]
        row.wallet += change
        now = self.server_time_ms()
        row.update_time = now
        event = {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now - 1,
            "a": {
                "m": reason,
                "B": [{"a": asset, "wb": amount(row.wallet), "cw": amount(row.wallet), "bc": amount(change)}],
                "P": [],
            },
        }
        await self.push(event)
        return event

    async def push_margin_call(self) -> dict[str, Any]:
        event = {
            "e": "MARGIN_CALL",
            "E": self.server_time_ms(),
            "cw": amount(self.account.assets["USDT"].wallet),
            "p": [
                {
                    "s": "ETHUSDT",
                    "ps": "LONG",
                    "pa": "1.327",
                    "mt": "CROSSED",
                    "iw": "0",
                    "mp": "187.17",
                    "up": "-1.16",
                    "mm": "1.61",
                }
            ],
        }
        await self.push(event)
        return event

    async def push_multi_assets(self, enabled: bool) -> dict[str, Any]:
        self.account.multi_assets = enabled
        event = {
            "e": "ACCOUNT_CONFIG_UPDATE",
            "E": self.server_time_ms(),
            "T": self.server_time_ms(),
            "ai": {"j": enabled},
        }
        await self.push(event)
        return event

    async def expire_listen_keys(self) -> None:
        """Expire every listen key now: streams get ``listenKeyExpired`` and are closed."""
        now = self.server_time_ms()
        for key in list(self.listen_keys):
            await self.push({"e": "listenKeyExpired", "E": str(now), "listenKey": key}, listen_key=key)
            self.listen_keys.pop(key, None)
            await self._close_streams(key)

    def drop_streams(self) -> int:
        """Abort every user-data stream connection (the API connections stay up); returns how many."""
        sockets = [ws for subs in self._streams.values() for ws in subs]
        for ws in sockets:
            ws.transport.abort()
        return len(sockets)

    async def drop_connections(self, code: int | None = None) -> None:
        """Close every connection, API and stream: abruptly, or with a close code."""
        sockets = [conn.ws for conn in self._api] + [ws for subs in self._streams.values() for ws in subs]
        for ws in sockets:
            if code is None:
                ws.transport.abort()
            else:
                await ws.close(code, "going away")

    # -- console ----------------------------------------------------------------------------------------------

    async def command(self, line: str) -> str:
        """Apply one console command (``help`` lists them); returns what to tell the person who typed it."""
        words = line.split()
        if not words:
            return ""
        name, args = words[0].lower(), words[1:]
        faults = self.faults

        def count() -> int:
            return int(args[0]) if args else 1

        def switch() -> bool:
            return not args or args[0].lower() in ("on", "true", "1", "yes")

        try:
            if name == "help":
                return CONSOLE_HELP
            if name in ("drop", "close", "malformed", "wrong-shape", "bad-amount", "oversized", "shutdown"):
                attribute = {
                    "drop": "drop_next", "close": "close_next", "malformed": "malformed_next",
                    "wrong-shape": "wrong_shape_next", "bad-amount": "bad_amount_next",
                    "oversized": "oversized_next", "shutdown": "shutdown_notice_next",
                }[name]  # fmt: skip
                setattr(faults, attribute, count())
                return f"{name}: the next {count()} request(s)"
            if name == "silent":
                faults.silent = switch()
                return f"silent {'on' if faults.silent else 'off'}"
            if name == "mute":
                faults.stream_mute = switch()
                return f"user-data streams {'mute' if faults.stream_mute else 'delivering'}"
            if name == "skew":
                faults.clock_skew_ms = int(args[0])
                return f"server clock {faults.clock_skew_ms:+d} ms"
            if name == "ban":
                self.ban(int(args[0]) if args else 120)
                return f"IP banned until {self.banned_until_ms}"
            if name == "unban":
                self.banned_until_ms = 0
                return "ban lifted"
            if name == "limit":
                self.weight_limit = int(args[0])
                return f"weight limit {self.weight_limit}/min"
            if name == "others":
                self.others_per_window = int(args[0])
                return f"other programs spend {self.others_per_window} weight at each minute's start"
            if name == "spend":
                self.spend_weight(int(args[0]))
                return f"IP weight now {self.weight_count()}"
            if name in ("revoke", "restore"):
                for key in self.keys.values():
                    key.revoked = name == "revoke"
                return f"all keys {'revoked' if name == 'revoke' else 'restored'}"
            if name == "expire-keys":
                await self.expire_listen_keys()
                return "listen keys expired"
            if name == "drop-streams":
                return f"{self.drop_streams()} user-data stream(s) dropped"
            if name == "drop-all":
                await self.drop_connections()
                return "all connections dropped"
            if name == "push":
                asset = (args[0] if args else "USDT").upper()
                amount_text = args[1] if len(args) > 1 else "1"
                if asset not in self.account.assets:
                    return f"push: unknown asset {asset} (the account holds {', '.join(self.account.assets)})"
                await self.push_balance_change(asset, Decimal(amount_text))
                return f"pushed {amount_text} {asset}"
            if name == "margin-call":
                await self.push_margin_call()
                return "MARGIN_CALL pushed"
            if name == "multi-assets":
                await self.push_multi_assets(switch())
                return f"Multi-Assets mode {'on' if self.account.multi_assets else 'off'}"
            if name == "lifetime":
                self.max_connection_age = int(args[0])
                return f"new connections close after {self.max_connection_age:g} s"
            if name == "status":
                active = {k: v for k, v in vars(faults).items() if v and k not in ("close_code", "oversized_bytes")}
                return (
                    f"weight {self.weight_count()}/{self.weight_limit}, banned until {self.banned_until_ms}, {active}"
                )
        except (ValueError, IndexError, KeyError, ArithmeticError) as exc:
            return f"{name}: {exc or 'bad arguments'} (help lists the commands)"
        return f"unknown command {name!r} (help lists the commands)"

    # -- demo -------------------------------------------------------------------------------------------------

    def start_ticker(self, interval: float = 1.0, *, push_every: int = 0) -> None:
        """Move the demo account's marks every ``interval`` seconds of the simulator's clock.

        With ``push_every``, every that many ticks a small trade fee is charged and pushed as an ACCOUNT_UPDATE,
        so a demo shows pushes arriving too.
        """

        async def ticker() -> None:
            ticks = 0
            while True:
                await self.clock.sleep(interval)
                ticks += 1
                self.account.tick(self.server_time_ms())
                if push_every and ticks % push_every == 0:
                    fee = -Decimal(self.account.rng.randint(1, 400)) / Decimal(10_000)
                    await self.push_balance_change("USDT", fee, reason="ORDER")

        self._spawn(ticker())


CONSOLE_HELP = """\
drop [N] | close [N]          abort / close (1001) the connection on the next N requests
silent on|off                 read requests, answer nothing
mute on|off                   user-data streams stay open but deliver nothing (balances still change)
malformed | wrong-shape | bad-amount | oversized [N]   spoil the next N replies
shutdown [N]                  send a serverShutdown notice before the next N replies
skew MS                       run the server clock MS milliseconds ahead (negative: behind)
ban [SECONDS] | unban         418 on everything (default 120 s)
limit N | others N | spend N  weight limit; weight other programs spend each minute; spend some now
revoke | restore              revoke every key (-2015 with id null) / undo
expire-keys | drop-all        expire listen keys / drop every connection
drop-streams                  drop the user-data streams only
push [ASSET AMOUNT] | margin-call | multi-assets on|off   user-data events
lifetime SECONDS              connections opened from now on close after this long
status | help"""


def _param_value(value: Any) -> str:
    if isinstance(value, str | int | bool):
        return param_text(value)
    return str(value)


def _spoil_amount(result: Any) -> Any:
    if isinstance(result, list) and result and isinstance(result[0], dict):
        return [{**result[0], "balance": "12O.5"}, *result[1:]]
    if isinstance(result, dict) and result.get("assets"):
        assets = result["assets"]
        return {**result, "assets": [{**assets[0], "walletBalance": "12O.5"}, *assets[1:]]}
    return result


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _json_response(status: int, body: Mapping[str, Any]) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return Response(status, http.HTTPStatus(status).phrase, headers, data)
