"""The simulated exchange's server: lifecycle, the HTTP side, and the WebSocket API's request loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from services.clock import SYSTEM_CLOCK, Clock
from services.simulator.account import SimulatedAccount
from services.simulator.console import Console
from services.simulator.core import (
    HANDSHAKE_WEIGHT,
    SIGNED_METHODS,
    V1_WEIGHT,
    ApiConnection,
    Refusal,
    json_default,
    json_response,
    log,
)
from services.simulator.faults import spoiled_reply


class ExchangeSimulator(Console):
    """The simulated exchange. ``async with ExchangeSimulator() as sim:`` serves on a free loopback port.

    It is faithful where a client can tell: real signature and timestamp checks (PROTOCOL.md §3), real weights in
    fixed per-minute windows with 429 and escalating 418 bans (§5), the exchange's error replies and codes (§7), the
    user-data stream in the forms production serves (§1, §6), mark prices on ``/market`` (§6b), valid JSON only.
    Fault modes are switched on at run time (:class:`~services.simulator.faults.Faults`).
    """

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
        v1_weight: int = V1_WEIGHT,
    ) -> None:
        super().__init__(
            clock=clock,
            account=account or SimulatedAccount(),
            weight_limit=weight_limit,
            max_connection_age=max_connection_age,
        )
        self._init_weights(ban_after_429s)
        self.set_v1_weight(v1_weight)
        self._init_keys()
        self._init_user_data()
        self._init_market()
        self.host = host
        self.port = port
        self.max_frame_size = max_frame_size
        self.handshakes = 0
        self._server: Server | None = None
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

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/fapi/v1/time":
            return json_response(200, {"serverTime": self.server_time_ms()})
        if self.server_time_ms() < self.banned_until_ms:
            retry = max(1, (self.banned_until_ms - self.server_time_ms()) // 1000)
            response = json_response(418, {"code": -1003, "msg": f"IP banned until {self.banned_until_ms}."})
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
                return json_response(400, {"code": -1125, "msg": "This listenKey does not exist."})
            return None
        if url.path.startswith("/market/"):
            return None  # mark prices are free: no key, no weight
        return json_response(404, {"code": -1, "msg": f"no such endpoint: {url.path}"})

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        if url.path.startswith("/private/"):
            await self._serve_stream(ws, url.path, url.query)
        elif url.path.startswith("/market/"):
            await self._serve_market(ws, url.path, url.query)
        else:
            query = parse_qs(url.query)
            conn = ApiConnection(
                ws,
                connected_at_ms=self.server_time_ms(),
                return_rate_limits=query.get("returnRateLimits", ["true"])[0] != "false",
            )
            await self._serve_api(conn)

    async def _serve_api(self, conn: ApiConnection) -> None:
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

    async def _on_request(self, conn: ApiConnection, frame: str | bytes) -> bool:
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
        conn.requests += 1
        if faults.drop_next or (faults.drop_after and conn.requests > faults.drop_after):
            faults.drop_next = max(0, faults.drop_next - 1)
            conn.ws.transport.abort()
            return False
        if faults.silent_after and conn.requests > faults.silent_after:
            return True  # read, never answered: this connection has gone quiet
        if faults.close_next:
            faults.close_next -= 1
            await conn.ws.close(faults.close_code, "going away")
            return False
        if faults.silent:
            return True
        if faults.shutdown_notice_next:
            faults.shutdown_notice_next -= 1
            await conn.ws.send(json.dumps({"event": {"e": "serverShutdown", "E": self.server_time_ms()}}))
        count = self._charge(self.weights.get(str(method), 1))
        try:
            self._check_rate(count)
            if not isinstance(method, str) or not isinstance(params, dict):
                raise Refusal(400, -1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
            result = self._dispatch(conn, method, params)
        except Refusal as refusal:
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

    async def _send(
        self,
        conn: ApiConnection,
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
        text = spoiled_reply(self.faults, reply, json_default)
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(text)

    # -- methods ----------------------------------------------------------------------------------------------

    def _dispatch(self, conn: ApiConnection, method: str, params: dict[str, Any]) -> Any:
        self._check_revoked(conn, params)
        if method in SIGNED_METHODS:
            self._authenticate(conn, params)
            if method in ("account.balance", "v2/account.balance"):
                return self.account.balance_rows()
            if method in ("account.position", "v2/account.position"):
                rows = self.account.position_rows(v2=method.startswith("v2/"))
                symbol = params.get("symbol")
                return [r for r in rows if r["symbol"] == symbol] if isinstance(symbol, str) else rows
            return self.account.status(v2=method.startswith("v2/"))
        if method == "session.logon":
            if not self.sessions_enabled:
                raise Refusal(400, -4056, "Invalid api key type.")
            if self.faults.logon_skew_next:
                self.faults.logon_skew_next -= 1
                raise Refusal(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
            key = self._verify_signature(params)
            if key.kind != "ed25519":
                raise Refusal(400, -4056, "Invalid api key type.")
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
        raise Refusal(400, -1100, f"Unknown method '{method}'.")

    async def _demo_change(self, n: int) -> None:
        """The demo's balance changes, with the variety of reasons a real account's tape shows."""
        rng = self.account.rng
        kind = n % 8
        if kind == 3:
            funding = -Decimal(rng.randint(1, 900)) / Decimal(1000)
            await self.push_balance_change("USDT", funding, reason="FUNDING_FEE", symbol="BTCUSDT")
        elif kind == 7 and self.account.multi_assets:
            await self.push_balance_change("USDC", "-1.5", reason="AUTO_EXCHANGE")
        elif kind == 7:
            await self.push_balance_change("USDT", Decimal(rng.randint(1, 50)) / 100, reason="ADJUSTMENT")
        else:
            fee = -Decimal(rng.randint(1, 400)) / Decimal(10_000)
            await self.push_balance_change("USDT", fee, reason="ORDER")

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
                await self.push_marks(ticks)
                if push_every and ticks % push_every == 0:
                    await self._demo_change(ticks // push_every)

        self._spawn(ticker())
