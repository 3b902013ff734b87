"""The simulated exchange: its parts put together, its lifecycle, and the HTTP side that routes each connection to
the part that serves it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from services.clock import SYSTEM_CLOCK, Clock
from services.simulator.account import SimulatedAccount
from services.simulator.api import WsApi
from services.simulator.auth import KeyRing
from services.simulator.console import command
from services.simulator.core import HANDSHAKE_WEIGHT, V1_WEIGHT, ApiConnection, Venue, json_response, log
from services.simulator.faults import Faults
from services.simulator.market import MarketHub
from services.simulator.userdata import UserDataHub
from services.simulator.weights import IpWeight


class ExchangeSimulator:
    """The simulated exchange. ``async with ExchangeSimulator() as sim:`` serves on a free loopback port.

    It is faithful where a client can tell: real signature and timestamp checks (PROTOCOL.md §3), real weights in
    fixed per-minute windows with 429 and escalating 418 bans (§5), the exchange's error replies and codes (§7), the
    user-data stream in the forms production serves (§1, §6), mark prices on ``/market`` (§6b), valid JSON only.
    Fault modes are switched on at run time (:class:`~services.simulator.faults.Faults`).

    It *has* its parts, each with one job and the parts it needs handed to it: ``venue`` (clock, account, faults),
    ``ip`` (request weight and bans), ``keyring`` (keys, signatures, sessions), ``user_data`` (listen keys, the
    ``/private`` streams, the events pushed), ``market`` (mark prices), ``api`` (the request loop). The methods
    below are the exchange's everyday actions, for tests, the demo and the console; anything else is on a part.
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
        self.venue = Venue(clock=clock, account=account or SimulatedAccount(), max_connection_age=max_connection_age)
        self.ip = IpWeight(self.venue, limit=weight_limit, ban_after_429s=ban_after_429s, v1_weight=v1_weight)
        self.keyring = KeyRing(self.venue)
        self.user_data = UserDataHub(self.venue, self.keyring)
        self.market = MarketHub(self.venue)
        self.api = WsApi(self.venue, self.ip, self.keyring, self.user_data)
        self.host = host
        self.port = port
        self.max_frame_size = max_frame_size
        self.handshakes = 0
        self._server: Server | None = None
        self.account.set_time(self.server_time_ms())

    @property
    def clock(self) -> Clock:
        return self.venue.clock

    @property
    def account(self) -> SimulatedAccount:
        return self.venue.account

    @property
    def faults(self) -> Faults:
        return self.venue.faults

    def server_time_ms(self) -> int:
        return self.venue.server_time_ms()

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
        for task in list(self.venue.tasks):
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
    def rest_url(self) -> str:
        """The REST origin: the server time, and (as the spot host) the key's permissions."""
        return f"http://{self.host}:{self.port}"

    @property
    def time_url(self) -> str:
        return f"http://{self.host}:{self.port}/fapi/v1/time"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/fapi/v1/time":
            return json_response(200, {"serverTime": self.venue.reported_time_ms()})
        if url.path == "/sapi/v1/account/apiRestrictions":  # the spot host's, served here too (weight: sapi's)
            status, body = self.keyring.api_restrictions(url.query, request.headers.get("X-MBX-APIKEY"))
            return json_response(status, body)
        if self.ip.banned():
            banned_until = self.ip.banned_until_ms
            retry = max(1, (banned_until - self.server_time_ms()) // 1000)
            response = json_response(418, {"code": -1003, "msg": f"IP banned until {banned_until}."})
            response.headers["Retry-After"] = str(retry)
            return response
        if url.path == "/ws-fapi/v1":
            self.handshakes += 1
            self.ip.charge(HANDSHAKE_WEIGHT)
            return None
        if url.path.startswith("/private/ws/"):
            return None  # accepted, whatever the key: production then delivers nothing on this form
        if url.path in ("/private/ws", "/private/stream"):
            key = self.user_data.stream_key(url.path, url.query)
            if key is None or not self.user_data.listen_key_alive(key):
                return json_response(400, {"code": -1125, "msg": "This listenKey does not exist."})
            return None
        if url.path.startswith("/market/"):
            return None  # mark prices are free: no key, no weight
        return json_response(404, {"code": -1, "msg": f"no such endpoint: {url.path}"})

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        if url.path.startswith("/private/"):
            await self.user_data.serve(ws, url.path, url.query)
        elif url.path.startswith("/market/"):
            await self.market.serve(ws, url.path, url.query)
        else:
            query = parse_qs(url.query)
            conn = ApiConnection(
                ws,
                connected_at_ms=self.server_time_ms(),
                return_rate_limits=query.get("returnRateLimits", ["true"])[0] != "false",
            )
            await self.api.serve(conn)

    async def drop_connections(self, code: int | None = None) -> None:
        """Close every connection, API and stream: abruptly, or with a close code."""
        sockets = [conn.ws for conn in self.api.connections()] + self.user_data.connections()
        for ws in sockets:
            if code is None:
                ws.transport.abort()
            else:
                await ws.close(code, "going away")

    async def command(self, line: str) -> str:
        """One fault-console line (``help`` lists them); returns what to tell the person who typed it."""
        return await command(self, line)

    # -- the exchange's everyday actions ----------------------------------------------------------------------

    @property
    def requests(self) -> Any:
        """(server time, method) of the requests received, the latest 50,000."""
        return self.api.requests

    @property
    def last_params(self) -> dict[str, Any]:
        return self.api.last_params

    @property
    def last_result(self) -> dict[str, Any]:
        return self.api.last_result

    def add_hmac_key(self, api_key: str | None = None, secret: str | None = None) -> tuple[str, str]:
        return self.keyring.add_hmac_key(api_key, secret)

    def add_public_key(self, public_key: Any, api_key: str | None = None) -> str:
        return self.keyring.add_public_key(public_key, api_key)

    def revoke_key(self, api_key: str) -> None:
        self.keyring.revoke_key(api_key)

    def weight_count(self) -> int:
        return self.ip.count()

    def own_weight(self, window: int | None = None) -> int:
        return self.ip.own(window)

    def spend_weight(self, weight: int) -> None:
        self.ip.spend(weight)

    def ban(self, seconds: float) -> None:
        self.ip.ban(seconds)

    async def push(self, event: dict[str, Any], *, listen_key: str | None = None) -> int:
        return await self.user_data.push(event, listen_key=listen_key)

    async def push_balance_change(
        self, asset: str, delta: Decimal | str, *, reason: str = "ORDER", symbol: str | None = None
    ) -> dict[str, Any]:
        return await self.user_data.push_balance_change(asset, delta, reason=reason, symbol=symbol)

    async def push_margin_call(self) -> dict[str, Any]:
        return await self.user_data.push_margin_call()

    async def push_multi_assets(self, enabled: bool) -> dict[str, Any]:
        return await self.user_data.push_multi_assets(enabled)

    async def change_position(
        self,
        symbol: str,
        side: str,
        amount_: Decimal | str,
        entry: Decimal | str,
        *,
        reason: str = "ORDER",
        margin_asset: str | None = None,
    ) -> dict[str, Any]:
        return await self.user_data.change_position(
            symbol, side, amount_, entry, reason=reason, margin_asset=margin_asset
        )

    async def expire_listen_keys(self) -> None:
        await self.user_data.expire_listen_keys()

    def drop_streams(self) -> int:
        return self.user_data.drop_streams()

    async def push_marks(self, tick: int = 0) -> int:
        return await self.market.push_marks(tick)

    async def move_marks(self, changes: dict[str, Decimal | str]) -> int:
        return await self.market.move_marks(changes)

    def market_subscriptions(self) -> set[str]:
        return self.market.subscriptions()

    # -- demo -------------------------------------------------------------------------------------------------

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
            await self._demo_fill(n)

    async def _demo_fill(self, n: int) -> None:
        """A small fill on the ETHUSDT long, adding 0.01 and then taking it off again: a taker's commission on each,
        the realized PnL of the 0.01 on the way out (both pushed: the wallet's change and the order's)."""
        held = self.account.positions.get(("ETHUSDT", "LONG"))
        if held is None:
            return
        mark = self.account.marks["ETHUSDT"]
        step = Decimal("0.01")
        adding = held.amount == Decimal(3)
        realized = Decimal(0) if adding else step * (mark - held.entry)
        fee = step * mark * Decimal("0.0004")  # the taker rate
        await self.user_data.fill("ETHUSDT", "LONG", held.amount + (step if adding else -step), mark,
                                  realized=realized.quantize(Decimal("0.00000001")),
                                  commission=fee.quantize(Decimal("0.00000001")))  # fmt: skip

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

        self.venue.spawn(ticker())
