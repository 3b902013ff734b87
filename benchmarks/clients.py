"""The clients measured side by side: ours, the official SDK, ccxt, and a bare websocket as the floor."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.harness import API_KEY, SECRET, Call


async def ours(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from services.client import WsApiClient
    from services.endpoints import Credentials
    from services.signing import HmacSigner

    client = WsApiClient(url, Credentials(API_KEY, HmacSigner(SECRET)))
    await client.connect()
    return (lambda: client.account_balance(v2=False)), client.close


async def sdk(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from binance_common.configuration import ConfigurationWebSocketAPI
    from binance_sdk_derivatives_trading_usds_futures import DerivativesTradingUsdsFutures

    config = ConfigurationWebSocketAPI(api_key=API_KEY, api_secret=SECRET, stream_url=url)
    connection = await DerivativesTradingUsdsFutures(config_ws_api=config).websocket_api.create_connection()

    async def call() -> Any:
        return (await connection.futures_account_balance()).data()  # parsed, as ours is

    async def close() -> None:
        await connection.close_connection(close_session=True)

    return call, close


async def ccxt_client(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import ccxt.pro

    exchange = ccxt.pro.binanceusdm({"apiKey": API_KEY, "secret": SECRET, "enableRateLimit": False})
    exchange.urls["api"]["ws"]["ws-api"]["linear"] = url
    exchange.markets = {}  # preset: loading them would ask Binance's REST API
    exchange.markets_by_id = {}
    await exchange.fetch_balance_ws({"method": "account.balance"})  # opens the connection
    return (lambda: exchange.fetch_balance_ws({"method": "account.balance"})), exchange.close


async def bare(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """The floor: sign, send, receive, json.loads — no matching, no models, nothing else."""
    import websockets

    ws = await websockets.connect(url, compression=None)
    ids = iter(range(1, 10**9))

    async def call() -> Any:
        params = f"apiKey={API_KEY}&timestamp={time.time_ns() // 1_000_000}"
        signature = hmac.new(SECRET.encode(), params.encode(), hashlib.sha256).hexdigest()
        timestamp = int(params.rsplit("=", 1)[1])
        request = {
            "id": next(ids),
            "method": "account.balance",
            "params": {"apiKey": API_KEY, "timestamp": timestamp, "signature": signature},
        }
        await ws.send(json.dumps(request))
        return json.loads(await ws.recv())

    return call, ws.close


CLIENTS: dict[str, Callable[[str], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]]] = {
    "balance-tui": ours,
    "official SDK": sdk,
    "ccxt fetch_balance_ws": ccxt_client,
    "bare websockets": bare,
}
