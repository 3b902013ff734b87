"""The simulator on its own, spoken to with raw websockets: it must behave as the exchange documents."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
import websockets

from services.clock import VirtualClock
from services.signing import HmacSigner, signing_text
from services.simulator import ExchangeSimulator
from tests.helpers import DOC_KEY, DOC_SECRET, until

DOC_TIMESTAMP = 1702561978458


async def ask(url: str, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    async with websockets.connect(url) as ws:
        replies = []
        for request in requests:
            await ws.send(json.dumps(request))
            replies.append(json.loads(await ws.recv()))
        return replies


@pytest.fixture
async def doc_sim() -> Any:
    # The clock stands at the documentation's timestamp, so its exact signed request is fresh.
    clock = VirtualClock(start_ms=DOC_TIMESTAMP + 100)
    simulator = ExchangeSimulator(clock=clock)
    simulator.add_hmac_key(DOC_KEY, DOC_SECRET)
    async with simulator:
        yield simulator


def doc_request(signature: str, **extra: Any) -> dict[str, Any]:
    params = {"apiKey": DOC_KEY, "recvWindow": 5000, "timestamp": DOC_TIMESTAMP, **extra, "signature": signature}
    return {"id": "doc-1", "method": "v2/account.balance", "params": params}


async def test_the_documented_signature_is_accepted_and_a_wrong_one_refused(doc_sim: ExchangeSimulator) -> None:
    good, bad = await ask(
        doc_sim.ws_url,
        doc_request("793beda4efb93e44049d807438014da4594dfd10df1ab23c3365d937c7df12aa"),
        doc_request("793beda4efb93e44049d807438014da4594dfd10df1ab23c3365d937c7df12ab"),
    )
    assert good["id"] == "doc-1" and good["status"] == 200  # the id comes back as sent, a string
    assert bad["status"] == 400 and bad["error"]["code"] == -1022


async def test_every_param_is_signed(doc_sim: ExchangeSimulator) -> None:
    # The documented signature does not cover an extra param, so adding one must break it.
    [reply] = await ask(
        doc_sim.ws_url, doc_request("793beda4efb93e44049d807438014da4594dfd10df1ab23c3365d937c7df12aa", extra="1")
    )
    assert reply["error"]["code"] == -1022


def signed(sim: ExchangeSimulator, **params: Any) -> dict[str, Any]:
    params = {"apiKey": DOC_KEY, "timestamp": sim.server_time_ms(), **params}
    params["signature"] = HmacSigner(DOC_SECRET).sign(signing_text(params))
    return {"id": 7, "method": "account.balance", "params": params}


async def test_timestamp_rules(doc_sim: ExchangeSimulator) -> None:
    now = doc_sim.server_time_ms()
    replies = await ask(
        doc_sim.ws_url,
        signed(doc_sim, timestamp=now + 999),  # just under a second ahead: accepted
        signed(doc_sim, timestamp=now + 1000),  # a second ahead: refused
        signed(doc_sim, timestamp=now - 5000),  # exactly recvWindow old: accepted
        signed(doc_sim, timestamp=now - 5001),
        signed(doc_sim, timestamp=now - 59_000, recvWindow=60_000),
        signed(doc_sim, recvWindow=60_001),
    )
    assert [r["status"] for r in replies] == [200, 400, 200, 400, 200, 400]
    assert [r.get("error", {}).get("code") for r in replies] == [None, -1021, None, -1021, None, -1130]


async def test_missing_params_and_unknown_methods(doc_sim: ExchangeSimulator) -> None:
    replies = await ask(
        doc_sim.ws_url,
        {"id": 1, "method": "account.balance", "params": {"apiKey": DOC_KEY}},
        {"id": 2, "method": "account.balance", "params": {"timestamp": 1}},
        {"id": 3, "method": "order.place", "params": {}},
    )
    assert [r["error"]["code"] for r in replies] == [-1102, -1102, -1100]


@pytest.mark.parametrize("v1", [10, 5], ids=["v1 at the change log's 10", "v1 at its page's 5"])
async def test_weights_and_rate_limit_entries(doc_sim: ExchangeSimulator, v1: int) -> None:
    doc_sim.ip.set_v1_weight(v1)  # the contested weight of account.balance (PROTOCOL.md §4): either, as asked
    replies = await ask(doc_sim.ws_url, signed(doc_sim), {"id": 2, "method": "session.status", "params": {}})
    counts = [r["rateLimits"][0]["count"] for r in replies]
    assert counts == [5 + v1, 5 + v1 + 2]  # the handshake, account.balance, session.status
    assert replies[0]["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400, "count": 5 + v1,
    }  # fmt: skip


async def test_return_rate_limits_false_hides_them(doc_sim: ExchangeSimulator) -> None:
    [reply] = await ask(doc_sim.ws_url + "?returnRateLimits=false", {"id": 1, "method": "session.status"})
    assert "rateLimits" not in reply
    assert reply["result"]["returnRateLimits"] is False


async def test_windows_are_fixed_minutes_and_other_programs_count(doc_sim: ExchangeSimulator) -> None:
    doc_sim.ip.others_per_window = 1000
    clock = doc_sim.clock
    assert isinstance(clock, VirtualClock)
    await clock.advance(60)
    [reply] = await ask(doc_sim.ws_url, {"id": 1, "method": "session.status"})
    assert reply["rateLimits"][0]["count"] == 1000 + 5 + 2
    assert doc_sim.own_weight() == 7


async def test_replies_are_valid_json_with_amounts_as_strings(doc_sim: ExchangeSimulator) -> None:
    doc_sim.account.multi_assets = True
    async with websockets.connect(doc_sim.ws_url) as ws:
        for method in ("account.balance", "v2/account.balance", "account.status", "v2/account.status"):
            request = signed(doc_sim)
            request["method"] = method
            await ws.send(json.dumps(request))
            text = await ws.recv()
            # strict: no NaN/Infinity, no trailing commas, no comments
            reply = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
            assert reply["status"] == 200, reply
            rows = reply["result"] if isinstance(reply["result"], list) else reply["result"]["assets"]
            for row in rows:
                for name, value in row.items():
                    if name not in ("asset", "accountAlias", "marginAvailable", "updateTime"):
                        assert isinstance(value, str) and Decimal(value) == Decimal(value).quantize(Decimal("1E-8"))


async def test_multi_assets_rows_give_the_account_available_in_their_own_units(doc_sim: ExchangeSimulator) -> None:
    """As production does (PROTOCOL.md §4, corrected): each margin asset's availableBalance is the whole account's
    available counted in that asset (3333.21 USD was 0.10604798 on the BTC row), not the USD figure repeated."""
    doc_sim.account.multi_assets = True
    request = signed(doc_sim)
    request["method"] = "account.status"
    [reply] = await ask(doc_sim.ws_url, request)
    result = reply["result"]
    assert result["multiAssetsMargin"] is True
    account = Decimal(result["availableBalance"])
    for row in (a for a in result["assets"] if a["marginAvailable"]):
        price = doc_sim.account.assets[row["asset"]].price
        assert abs(Decimal(row["availableBalance"]) * price - account) < price * Decimal("1E-8"), row["asset"]
    btc = next(a for a in result["assets"] if a["asset"] == "BTC")
    assert Decimal(btc["availableBalance"]) < account / 1000  # BTC, not USD
    assert Decimal(btc["maxWithdrawAmount"]) <= Decimal(btc["walletBalance"])  # max withdraw: the asset's own
    total = Decimal(result["totalWalletBalance"]) + Decimal(result["totalUnrealizedProfit"])
    assert Decimal(result["totalMarginBalance"]) == total


async def test_v1_status_lists_every_symbol_and_v2_only_those_in_use(doc_sim: ExchangeSimulator) -> None:
    v1, v2 = signed(doc_sim), signed(doc_sim)
    v1["method"], v2["method"] = "account.status", "v2/account.status"
    one, two = await ask(doc_sim.ws_url, v1, v2)
    assert len(one["result"]["positions"]) > len(two["result"]["positions"])
    assert "multiAssetsMargin" not in two["result"]


async def test_server_time_endpoint(doc_sim: ExchangeSimulator) -> None:
    def get() -> dict[str, Any]:
        with urllib.request.urlopen(doc_sim.time_url, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    assert await asyncio.to_thread(get) == {"serverTime": doc_sim.server_time_ms()}


EVENTS = "ACCOUNT_UPDATE/MARGIN_CALL/ACCOUNT_CONFIG_UPDATE/listenKeyExpired"


async def test_user_data_stream_and_account_update_push(doc_sim: ExchangeSimulator) -> None:
    [started] = await ask(doc_sim.ws_url, {"id": 1, "method": "userDataStream.start", "params": {"apiKey": DOC_KEY}})
    key = started["result"]["listenKey"]
    async with websockets.connect(f"{doc_sim.stream_url}/private/ws?listenKey={key}&events={EVENTS}") as stream:
        await _until_subscribed(doc_sim)
        sent = await doc_sim.push_balance_change("USDT", "-12.5")
        event = json.loads(await stream.recv())
    assert event == sent
    assert event["e"] == "ACCOUNT_UPDATE" and event["a"]["B"][0]["a"] == "USDT"
    assert event["a"]["B"][0]["wb"] == "122594.85137903"


async def test_stream_event_filter_and_combined_form(doc_sim: ExchangeSimulator) -> None:
    [started] = await ask(doc_sim.ws_url, {"id": 1, "method": "userDataStream.start", "params": {"apiKey": DOC_KEY}})
    key = started["result"]["listenKey"]
    filtered = f"{doc_sim.stream_url}/private/ws?listenKey={key}&events=MARGIN_CALL/listenKeyExpired"
    async with (
        websockets.connect(filtered) as only_calls,
        websockets.connect(f"{doc_sim.stream_url}/private/stream?listenKey={key}&events={EVENTS}") as combined,
    ):
        await _until_subscribed(doc_sim, 2)
        await doc_sim.push_balance_change("USDT", "1")
        await doc_sim.push_margin_call()
        assert json.loads(await only_calls.recv())["e"] == "MARGIN_CALL"
        first = json.loads(await combined.recv())
        assert first["stream"] == key and first["data"]["e"] == "ACCOUNT_UPDATE"


async def test_expired_listen_key_is_announced_and_refused(doc_sim: ExchangeSimulator) -> None:
    [started] = await ask(doc_sim.ws_url, {"id": 1, "method": "userDataStream.start", "params": {"apiKey": DOC_KEY}})
    key = started["result"]["listenKey"]
    async with websockets.connect(f"{doc_sim.stream_url}/private/ws?listenKey={key}&events={EVENTS}") as stream:
        await _until_subscribed(doc_sim)
        await doc_sim.expire_listen_keys()
        event = json.loads(await stream.recv())
    assert event["e"] == "listenKeyExpired" and event["listenKey"] == key
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(f"{doc_sim.stream_url}/private/ws?listenKey={key}&events={EVENTS}")
    [ping] = await ask(doc_sim.ws_url, {"id": 2, "method": "userDataStream.ping", "params": {"apiKey": DOC_KEY}})
    assert ping["error"]["code"] == -1125


async def test_the_stream_forms_production_does_not_deliver_on_are_open_and_mute(doc_sim: ExchangeSimulator) -> None:
    """PROTOCOL.md §1 [prod report]: the key as a path segment, or no ``events=``, connects and delivers nothing."""
    [started] = await ask(doc_sim.ws_url, {"id": 1, "method": "userDataStream.start", "params": {"apiKey": DOC_KEY}})
    key = started["result"]["listenKey"]
    async with (
        websockets.connect(f"{doc_sim.stream_url}/private/ws/{key}"),
        websockets.connect(f"{doc_sim.stream_url}/private/ws?listenKey={key}"),
    ):
        await _until_subscribed(doc_sim, 2)
        doc_sim.account.assets["USDT"].wallet += Decimal(1)
        assert await doc_sim.push(event_for(doc_sim)) == 0
        async with websockets.connect(f"{doc_sim.stream_url}/private/ws?listenKey={key}&events={EVENTS}") as good:
            await _until_subscribed(doc_sim, 3)
            assert await doc_sim.push(event_for(doc_sim)) == 1  # only the documented form gets it
            assert json.loads(await good.recv())["e"] == "ACCOUNT_UPDATE"


async def test_a_mute_stream_stays_open_and_delivers_nothing(doc_sim: ExchangeSimulator) -> None:
    [started] = await ask(doc_sim.ws_url, {"id": 1, "method": "userDataStream.start", "params": {"apiKey": DOC_KEY}})
    key = started["result"]["listenKey"]
    async with websockets.connect(f"{doc_sim.stream_url}/private/ws?listenKey={key}&events={EVENTS}") as stream:
        await _until_subscribed(doc_sim)
        assert await doc_sim.command("mute on") == "user-data streams mute"
        before = doc_sim.account.assets["USDT"].wallet
        await doc_sim.push_balance_change("USDT", "-3")
        assert doc_sim.account.assets["USDT"].wallet == before - 3  # the balance changed
        assert await doc_sim.push(event_for(doc_sim)) == 0  # and nobody was told
        await doc_sim.command("mute off")
        assert await doc_sim.push(event_for(doc_sim)) == 1
        assert json.loads(await stream.recv())["e"] == "ACCOUNT_UPDATE"


def event_for(sim: ExchangeSimulator) -> dict[str, Any]:
    wallet = f"{sim.account.assets['USDT'].wallet:f}"
    return {
        "e": "ACCOUNT_UPDATE",
        "E": sim.server_time_ms(),
        "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": wallet, "cw": wallet}]},
    }


async def test_listen_keys_live_sixty_minutes_unless_pinged(doc_sim: ExchangeSimulator) -> None:
    clock = doc_sim.clock
    assert isinstance(clock, VirtualClock)
    start = {"id": 1, "method": "userDataStream.start", "params": {"apiKey": DOC_KEY}}
    ping = {"id": 2, "method": "userDataStream.ping", "params": {"apiKey": DOC_KEY}}
    [started] = await ask(doc_sim.ws_url, start)
    await clock.advance(50 * 60)
    [pinged] = await ask(doc_sim.ws_url, ping)
    assert pinged["result"]["listenKey"] == started["result"]["listenKey"]
    await clock.advance(59 * 60)
    assert doc_sim.user_data.listen_key_alive(started["result"]["listenKey"])
    await clock.advance(2 * 60)
    [late] = await ask(doc_sim.ws_url, ping)
    assert late["error"]["code"] == -1125


async def test_the_retired_legacy_stream_path_is_not_served(doc_sim: ExchangeSimulator) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(f"{doc_sim.stream_url}/ws/somekey")
    assert info.value.response.status_code == 404


async def _until_subscribed(sim: ExchangeSimulator, count: int = 1) -> None:
    await until(lambda: len(sim.user_data.connections()) >= count)


async def test_the_fault_console(doc_sim: ExchangeSimulator) -> None:
    assert "drop [N]" in await doc_sim.command("help")
    assert await doc_sim.command("drop 2") == "drop: the next 2 request(s)" and doc_sim.faults.drop_next == 2
    await doc_sim.command("silent on")
    assert doc_sim.faults.silent
    await doc_sim.command("silent off")
    assert not doc_sim.faults.silent
    await doc_sim.command("skew -10000")
    assert doc_sim.faults.clock_skew_ms == -10_000
    await doc_sim.command("ban 60")
    assert doc_sim.ip.banned_until_ms == doc_sim.server_time_ms() + 60_000
    await doc_sim.command("unban")
    await doc_sim.command("limit 100")
    assert doc_sim.ip.limit == 100
    await doc_sim.command("revoke")
    assert all(key.revoked for key in doc_sim.keyring.keys.values())
    await doc_sim.command("restore")
    assert not any(key.revoked for key in doc_sim.keyring.keys.values())
    before = doc_sim.account.assets["BTC"].wallet
    await doc_sim.command("push btc 0.5")
    assert doc_sim.account.assets["BTC"].wallet == before + Decimal("0.5")
    assert "unknown command" in await doc_sim.command("sell everything")
    assert "help lists" in await doc_sim.command("skew lots")
    assert "weight" in await doc_sim.command("status")


async def test_the_console_names_an_asset_it_does_not_hold(doc_sim: ExchangeSimulator) -> None:
    reply = await doc_sim.command("push DOGE 5")
    assert reply.startswith("push: unknown asset DOGE") and "USDT" in reply
