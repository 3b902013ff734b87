"""Interop with code nobody here wrote: the official Binance SDK calls the simulator and is accepted.

This proves the simulator checks signatures the way the exchange does (the SDK url-encodes the sorted params and
signs with its own crypto library), not merely the way our own client happens to sign.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

# Imported outright, not importorskip: the SDK is in the test extra, and a skip here would hide a gap.
from binance_common.configuration import ConfigurationWebSocketAPI
from binance_sdk_derivatives_trading_usds_futures import DerivativesTradingUsdsFutures
from cryptography.hazmat.primitives.asymmetric import ed25519

from services.simulator import ExchangeSimulator
from tests.helpers import TEST_API_KEY, TEST_SECRET, pem


@pytest.fixture
async def real_time_sim() -> AsyncIterator[ExchangeSimulator]:
    # The SDK stamps requests with the machine's real time, so this simulator runs on the real clock too.
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with simulator:
        yield simulator


async def _call(config: ConfigurationWebSocketAPI) -> tuple[Any, Any]:
    connection = await DerivativesTradingUsdsFutures(config_ws_api=config).websocket_api.create_connection()  # type: ignore[no-untyped-call]
    try:
        balance = await connection.futures_account_balance()
        status = await connection.account_information_v2()
        return balance, status
    finally:
        await connection.close_connection(close_session=True)


async def test_sdk_hmac_calls_are_accepted(real_time_sim: ExchangeSimulator) -> None:
    config = ConfigurationWebSocketAPI(api_key=TEST_API_KEY, api_secret=TEST_SECRET, stream_url=real_time_sim.ws_url)
    balance, status = await _call(config)
    rows = balance.data()
    assert [row.asset for row in rows.result] == [a["asset"] for a in real_time_sim.last_result["account.balance"]]
    assert rows.result[0].balance == real_time_sim.last_result["account.balance"][0]["balance"]
    assert (
        status.data().result.total_wallet_balance
        == real_time_sim.last_result["v2/account.status"]["totalWalletBalance"]
    )
    assert balance.rate_limits and balance.rate_limits[0].count > 0
    methods = [method for _, method in real_time_sim.requests]
    assert methods == ["account.balance", "v2/account.status"]


async def test_sdk_ed25519_calls_are_accepted(real_time_sim: ExchangeSimulator, tmp_path: Any) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    api_key = real_time_sim.add_public_key(key.public_key(), "sdk-ed25519-key-0123456789abcdefghijklmnopqrstuv")
    path = tmp_path / "ed25519.pem"
    path.write_bytes(pem(key))
    path.chmod(0o600)  # a private key others can read is refused, as ssh does
    config = ConfigurationWebSocketAPI(api_key=api_key, private_key=str(path), stream_url=real_time_sim.ws_url)
    balance, status = await _call(config)
    assert balance.data().result[0].asset == "USDT"
    assert status.data().result.assets


async def test_a_bad_sdk_signature_is_refused(real_time_sim: ExchangeSimulator) -> None:
    config = ConfigurationWebSocketAPI(
        api_key=TEST_API_KEY, api_secret="not-the-secret", stream_url=real_time_sim.ws_url
    )
    balance, _ = await _call(config)
    # The SDK hands errors back as data rather than raising.
    assert balance.data() == {"error": {"code": -1022, "msg": "Signature for this request is not valid."}}
    assert "account.balance" not in real_time_sim.last_result
