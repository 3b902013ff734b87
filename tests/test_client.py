"""The client against the simulator over a real loopback websocket: every method, every key type, every fault."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from decimal import Decimal

import pytest
import websockets

from services.backoff import Backoff
from services.client import Offset, WsApiClient, clocksync
from services.clock import VirtualClock
from services.endpoints import Credentials
from services.errors import (
    ClockSkew,
    CredentialsRejected,
    NetworkError,
    ProtocolError,
    RateLimited,
    RequestRejected,
)
from services.signing import HmacSigner
from services.simulator import ExchangeSimulator
from services.weight import WeightLedger, WeightTable
from tests.helpers import TEST_API_KEY, TEST_SECRET, drive, until

T0 = 1_800_000_000_000


def make_client(
    sim: ExchangeSimulator, clock: VirtualClock, credentials: Credentials, **options: object
) -> WsApiClient:
    options.setdefault("request_timeout", 2.0)
    options.setdefault("backoff", Backoff(rng=random.Random(5)))
    return WsApiClient(sim.ws_url, credentials, clock=clock, **options)  # type: ignore[arg-type]


# -- methods and keys ---------------------------------------------------------------------------------------------


async def test_account_balance_is_exact_and_carries_the_weight_reading(
    client: WsApiClient, sim: ExchangeSimulator
) -> None:
    fetched = await client.fetch_account_balance()
    rows = fetched.value
    sent = {row["asset"]: row for row in sim.last_result["v2/account.balance"]}
    assert [row.asset for row in rows] == list(sent)
    for row in rows:
        assert format(row.balance, "f") == sent[row.asset]["balance"]
        assert format(row.available_balance, "f") == sent[row.asset]["availableBalance"]
    reading = fetched.weight
    assert reading is not None
    assert reading.limit == 2400
    # handshake 5 + session.status 2 (clock probe) + balance 5, all ours
    assert reading.count == sim.weight_count() == 12
    assert reading.own == 12
    assert reading.others == 0


async def test_v1_balance_and_both_status_versions(client: WsApiClient) -> None:
    assert next(r.asset for r in await client.account_balance(v2=False)) == "USDT"
    full = await client.account_status()
    assert full.multi_assets_margin is False
    short = await client.account_status(v2=True)
    assert short.multi_assets_margin is None
    assert short.total_wallet_balance == full.total_wallet_balance


async def test_several_requests_in_flight_are_matched_by_id(client: WsApiClient) -> None:
    results = await asyncio.gather(
        client.account_balance(),
        client.account_status(v2=True),
        client.session_status(),
        client.account_balance(v2=False),
    )
    assert isinstance(results[0], list)
    assert results[1].assets
    assert "serverTime" in results[2]
    assert isinstance(results[3], list)


async def test_other_programs_weight_is_told_apart(client: WsApiClient, sim: ExchangeSimulator) -> None:
    await client.account_balance()
    sim.spend_weight(1000)
    reading = (await client.fetch_account_balance()).weight
    assert reading is not None
    assert reading.others == 1000
    assert reading.own == 17


async def test_each_reply_carries_its_own_reading_and_the_meter_never_contradicts_itself(
    client: WsApiClient, sim: ExchangeSimulator
) -> None:
    await client.session_status()
    # Four requests in flight at once: each reading is the one its own reply carried, booked when it was sent.
    fetched = await asyncio.gather(*(client.fetch_account_status(v2=True) for _ in range(4)))
    readings = [f.weight for f in fetched]
    assert all(r is not None for r in readings)
    counts = [r.count for r in readings if r is not None]
    assert counts == sorted(counts) and len(set(counts)) == 4  # one reading per reply, not the last one four times
    for reading in readings:
        assert reading is not None and reading.own <= reading.count
    # Booked before sending: what the client counts as its own equals what the exchange counted.
    assert client.own_weight() == sim.own_weight()


async def test_ed25519_key_logs_on_and_then_sends_unsigned_requests(
    sim: ExchangeSimulator, clock: VirtualClock, ed25519_credentials: Credentials
) -> None:
    async with make_client(sim, clock, ed25519_credentials) as client:
        await client.account_status(v2=True)
        assert client.session_active
        assert "signature" not in sim.last_params
        assert "apiKey" not in sim.last_params
        status = await client.session_status()
        assert status["apiKey"] == ed25519_credentials.api_key


async def test_ed25519_falls_back_to_signing_when_logon_is_refused(
    sim: ExchangeSimulator, clock: VirtualClock, ed25519_credentials: Credentials
) -> None:
    sim.keyring.sessions_enabled = False
    async with make_client(sim, clock, ed25519_credentials) as client:
        await client.account_balance()
        assert not client.session_active
        assert sim.last_params["apiKey"] == ed25519_credentials.api_key
        assert "signature" in sim.last_params


async def test_one_refused_logon_costs_one_connection_its_session_not_the_client(
    sim: ExchangeSimulator, clock: VirtualClock, ed25519_credentials: Credentials
) -> None:
    sim.faults.logon_skew_next = 1  # -1021 once, as before the clock settled
    async with make_client(sim, clock, ed25519_credentials) as client:
        await client.account_balance()
        assert not client.session_active and "signature" in sim.last_params  # this connection signs
        await sim.drop_connections()
        await until(lambda: not client.connected)
        await drive(clock, client.account_balance())
        assert client.connections_opened == 2
        assert client.session_active and "signature" not in sim.last_params  # the next one logs on again


async def test_a_key_that_cannot_log_on_stops_trying(
    sim: ExchangeSimulator, clock: VirtualClock, ed25519_credentials: Credentials
) -> None:
    sim.keyring.sessions_enabled = False  # -4056: this key type cannot log on
    async with make_client(sim, clock, ed25519_credentials) as client:
        await client.account_balance()
        await sim.drop_connections()
        await until(lambda: not client.connected)
        await drive(clock, client.account_balance())
    assert [m for _, m in sim.requests].count("session.logon") == 1


async def test_rsa_signs_every_request(
    sim: ExchangeSimulator, clock: VirtualClock, rsa_credentials: Credentials
) -> None:
    async with make_client(sim, clock, rsa_credentials) as client:
        await client.account_balance()
        assert not client.session_active
        assert "session.logon" not in [method for _, method in sim.requests]
        assert "signature" in sim.last_params


async def test_recv_window_is_sent_and_bounded(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async with make_client(sim, clock, hmac_credentials, recv_window=60000) as client:
        await client.account_balance()
        assert sim.last_params["recvWindow"] == 60000
    with pytest.raises(ValueError, match="recvWindow"):
        make_client(sim, clock, hmac_credentials, recv_window=60001)


async def test_user_data_stream_methods(client: WsApiClient, sim: ExchangeSimulator) -> None:
    key = await client.user_data_stream_start()
    assert key == await client.user_data_stream_start()  # a second start returns the same key
    assert await client.user_data_stream_ping() == key
    await client.user_data_stream_stop()
    with pytest.raises(RequestRejected) as info:
        await client.user_data_stream_ping()
    assert info.value.code == -1125


async def test_session_methods(sim: ExchangeSimulator, clock: VirtualClock, ed25519_credentials: Credentials) -> None:
    async with make_client(sim, clock, ed25519_credentials, use_session=False) as client:
        assert (await client.session_status())["apiKey"] is None
        logon = await client.session_logon()
        assert logon["apiKey"] == ed25519_credentials.api_key
        assert client.session_active
        assert (await client.session_logout())["apiKey"] is None
        assert not client.session_active
        await client.account_balance()  # signed again after logout
        assert "signature" in sim.last_params


# -- credentials --------------------------------------------------------------------------------------------------


async def test_wrong_secret_is_rejected_as_credentials(sim: ExchangeSimulator, clock: VirtualClock) -> None:
    async with make_client(sim, clock, Credentials(TEST_API_KEY, HmacSigner("wrong"))) as client:
        with pytest.raises(CredentialsRejected) as info:
            await client.account_balance()
    assert info.value.code == -1022


async def test_unknown_key_is_rejected(sim: ExchangeSimulator, clock: VirtualClock) -> None:
    async with make_client(sim, clock, Credentials("nobody-knows-this-key", HmacSigner(TEST_SECRET))) as client:
        with pytest.raises(CredentialsRejected) as info:
            await client.account_balance()
    assert info.value.code == -2014


async def test_key_revoked_mid_session_is_answered_with_id_null(client: WsApiClient, sim: ExchangeSimulator) -> None:
    await client.account_balance()
    sim.revoke_key(TEST_API_KEY)
    with pytest.raises(CredentialsRejected) as info:
        await client.account_balance()
    assert info.value.code == -2015
    assert info.value.status == 401


async def test_revoked_session_key_is_rejected(
    sim: ExchangeSimulator, clock: VirtualClock, ed25519_credentials: Credentials
) -> None:
    async with make_client(sim, clock, ed25519_credentials) as client:
        await client.account_balance()
        sim.revoke_key(ed25519_credentials.api_key)
        with pytest.raises(CredentialsRejected):
            await client.account_balance()


# -- clock --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [10_000, -10_000])
async def test_clock_offset_is_measured_on_connect(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials, skew: int
) -> None:
    sim.faults.clock_skew_ms = skew
    async with make_client(sim, clock, hmac_credentials) as client:
        await client.account_balance()
        assert abs(client.clock_offset_ms - skew) < 50


async def test_minus_1021_remeasures_the_clock_and_retries_once(client: WsApiClient, sim: ExchangeSimulator) -> None:
    await client.account_balance()
    sim.faults.clock_skew_ms = -10_000  # the server's clock jumps back: our timestamps are now ahead
    rows = await client.account_balance()
    assert rows
    assert abs(client.clock_offset_ms + 10_000) < 50
    methods = [method for _, method in sim.requests]
    assert methods[-3:] == ["v2/account.balance", "session.status", "v2/account.balance"]


async def test_clock_skew_that_cannot_be_fixed_is_reported(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async with make_client(sim, clock, hmac_credentials) as client:
        await client.account_balance()
        client.offset = Offset(0, 0)
        sim.faults.clock_skew_ms = 30_000
        # the exchange says its time is 30 s ahead only when asked, so the retry fixes it
        assert await client.account_balance()
        # a session.status that lies (its serverTime 20 s ahead of the time the exchange checks by) leaves a skew
        # the client can only report
        sim.faults.clock_skew_ms = 0
        sim.faults.reported_skew_ms = 20_000
        client.offset = Offset(20_000, 0)
        with pytest.raises(ClockSkew):
            await client.account_balance()


# -- rate limits --------------------------------------------------------------------------------------------------


async def test_429_stops_the_client_until_the_window_resets(
    client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await client.account_balance()
    sim.ip.limit = 15
    with pytest.raises(RateLimited) as info:
        await client.account_balance()
    assert info.value.status == 429 and not info.value.banned
    window_end = (sim.server_time_ms() // 60_000 + 1) * 60_000
    assert info.value.retry_at_ms == window_end
    received = len(sim.requests)
    with pytest.raises(RateLimited):
        await client.account_balance()  # refused locally: nothing sent
    assert len(sim.requests) == received
    await clock.advance((window_end - sim.server_time_ms()) / 1000 + 0.01)
    assert await client.account_balance()
    assert sim.ip.bans == 0


async def test_429_without_retry_after_still_waits_for_the_window(client: WsApiClient, sim: ExchangeSimulator) -> None:
    await client.account_balance()
    sim.faults.retry_after_in_errors = False
    sim.ip.limit = 15
    with pytest.raises(RateLimited) as info:
        await client.account_balance()
    assert info.value.retry_at_ms == (sim.server_time_ms() // 60_000 + 1) * 60_000


async def test_418_ban_closes_the_socket_and_refuses_handshakes_until_it_ends(
    client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await client.account_balance()
    sim.ban(300)
    with pytest.raises(RateLimited) as info:
        await client.account_balance()
    assert info.value.banned and info.value.status == 418
    assert info.value.retry_at_ms == sim.ip.banned_until_ms
    # The client itself will not knock before the ban ends; a fresh client is refused at the handshake.
    fresh = WsApiClient(sim.ws_url, client.credentials, clock=clock, request_timeout=2.0)
    with pytest.raises(RateLimited) as handshake:
        await fresh.account_balance()
    assert handshake.value.status == 418
    await fresh.close()
    await clock.advance(301)
    assert await drive(clock, client.account_balance())


async def test_the_simulator_bans_a_client_that_ignores_429(sim: ExchangeSimulator) -> None:
    sim.ip.limit = 8  # the handshake (5) and one session.status (2) fit
    statuses = []
    async with websockets.connect(sim.ws_url) as ws:
        for i in range(8):
            try:
                await ws.send(json.dumps({"id": i, "method": "session.status", "params": {}}))
                statuses.append(json.loads(await ws.recv())["status"])
            except websockets.ConnectionClosed:
                break
    assert statuses == [200, 429, 429, 429, 418]  # banned on the fourth request past the limit; socket closed
    assert sim.ip.bans == 1


# -- faults -------------------------------------------------------------------------------------------------------


async def test_drop_mid_request_then_recover(client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock) -> None:
    await client.account_balance()
    sim.faults.drop_next = 1
    with pytest.raises(NetworkError):
        await client.account_balance()
    assert await drive(clock, client.account_balance())
    assert client.connections_opened == 2


async def test_silent_server_times_out_and_the_client_reconnects(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async with make_client(sim, clock, hmac_credentials, request_timeout=0.2) as client:
        await client.account_balance()
        sim.faults.silent = True
        waiting = asyncio.ensure_future(client.account_balance())
        await asyncio.sleep(0.3)  # more than the timeout on the loop's clock, none on the app's: still waiting
        assert not waiting.done()
        with pytest.raises(NetworkError, match="no reply"):
            await drive(clock, waiting, step=0.1)  # the app's clock moves too: the silence is found
        assert not client.connected
        sim.faults.silent = False
        assert await drive(clock, client.account_balance())


async def test_close_1001_then_recover(client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock) -> None:
    await client.account_balance()
    sim.faults.close_next = 1
    with pytest.raises(NetworkError, match="1001"):
        await client.account_balance()
    assert await drive(clock, client.account_balance())


async def test_the_server_closing_at_its_connection_lifetime_is_survived(
    clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    sim = ExchangeSimulator(clock=clock, max_connection_age=60)
    sim.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with sim, make_client(sim, clock, hmac_credentials) as client:
        await client.account_balance()
        await clock.advance(61)
        await until(lambda: not client.connected)
        assert await drive(clock, client.account_balance())
        assert client.connections_opened == 2


async def test_planned_rollover_before_the_lifetime_loses_no_request(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async with make_client(sim, clock, hmac_credentials, max_connection_age=23 * 3600) as client:
        await client.account_balance()
        for _ in range(3):
            await clock.advance(23 * 3600 + 1)
            assert await drive(clock, client.account_balance())
        assert client.connections_opened == 4
        assert sim.handshakes == 4


async def test_server_shutdown_notice_rolls_the_connection_over(
    client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await client.account_balance()
    sim.faults.shutdown_notice_next = 1
    assert await client.account_balance()  # answered on the old connection
    assert await drive(clock, client.account_balance())  # sent on a new one
    assert client.connections_opened == 2


async def test_malformed_json_is_a_protocol_error_then_recovery(client: WsApiClient, sim: ExchangeSimulator) -> None:
    await client.account_balance()
    sim.faults.malformed_next = 1
    with pytest.raises(ProtocolError, match="not JSON"):
        await client.account_balance()
    assert await client.account_balance()


async def test_wrong_shape_is_a_protocol_error(client: WsApiClient, sim: ExchangeSimulator) -> None:
    sim.faults.wrong_shape_next = 0
    await client.account_balance()
    sim.faults.wrong_shape_next = 1
    with pytest.raises(ProtocolError, match="expected a list"):
        await client.account_balance()
    sim.faults.wrong_shape_next = 1
    with pytest.raises(ProtocolError, match="unexpected reply"):
        await client.account_status()


async def test_an_amount_that_is_not_a_number_is_a_protocol_error(client: WsApiClient, sim: ExchangeSimulator) -> None:
    await client.account_balance()
    sim.faults.bad_amount_next = 1
    with pytest.raises(ProtocolError, match="balance"):
        await client.account_balance()
    sim.faults.bad_amount_next = 1
    with pytest.raises(ProtocolError, match="walletBalance"):
        await client.account_status(v2=True)


async def test_oversized_frame_is_refused_then_recovery(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async with make_client(sim, clock, hmac_credentials, max_frame_size=64 * 1024) as client:
        await client.account_balance()
        sim.faults.oversized_next = 1
        sim.faults.oversized_bytes = 128 * 1024
        with pytest.raises(ProtocolError, match="larger than"):
            await client.account_balance()
        assert await drive(clock, client.account_balance())


async def test_connection_refused_backs_off_and_never_knocks_more_than_once_a_second(
    clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    sim = ExchangeSimulator(clock=clock)
    await sim.start()
    port = sim.port
    await sim.stop()  # nothing listens there now
    client = WsApiClient(
        f"ws://127.0.0.1:{port}/ws-fapi/v1", hmac_credentials, clock=clock, backoff=Backoff(rng=random.Random(2))
    )
    failed_at: list[float] = []
    delays: list[float] = []
    for _ in range(6):
        with pytest.raises(NetworkError) as info:
            await drive(clock, client.connect(), step=0.05)
        failed_at.append(clock.monotonic())
        delays.append(info.value.retry_in)
    # Each attempt came at least the advised delay after the failure before it, and never within a second.
    for (before, after), advised in zip(itertools.pairwise(failed_at), delays, strict=False):
        assert after - before >= advised - 0.05
        assert after - before >= 0.95
    assert min(delays) >= 1.0
    assert delays[-1] > 8.0  # 1, 2, 4, 8, 16, 32 with jitter in the upper half: exponential


async def test_connect_waits_out_the_backoff_itself(clock: VirtualClock, hmac_credentials: Credentials) -> None:
    client = WsApiClient(
        "ws://127.0.0.1:9/ws-fapi/v1", hmac_credentials, clock=clock, backoff=Backoff(rng=random.Random(2))
    )
    with pytest.raises(NetworkError) as first:
        await client.connect()
    started = clock.monotonic()
    with pytest.raises(NetworkError):
        await drive(clock, client.connect(), step=0.1)
    assert clock.monotonic() - started >= first.value.retry_in - 0.1


async def test_server_restarting_on_the_same_port(clock: VirtualClock, hmac_credentials: Credentials) -> None:
    first = ExchangeSimulator(clock=clock)
    first.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    await first.start()
    client = make_client(first, clock, hmac_credentials)
    await client.account_balance()
    await first.stop()
    with pytest.raises(NetworkError):
        await drive(clock, client.account_balance())
    second = ExchangeSimulator(clock=clock, port=first.port)
    second.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with second:
        assert await drive(clock, _retrying(client))
    await client.close()


async def _retrying(client: WsApiClient) -> list[object]:
    while True:
        try:
            return list(await client.account_balance())
        except NetworkError as exc:
            await client.clock.sleep(exc.retry_in)


async def test_json_numbers_are_read_as_exact_decimals(client: WsApiClient, sim: ExchangeSimulator) -> None:
    await client.account_balance()
    reply = await client.request("session.status")
    assert isinstance(reply.result["serverTime"], int)
    # A float that slipped into a reply would be read as Decimal, digit for digit.
    assert json.loads('{"a": 0.1}', parse_float=Decimal)["a"] == Decimal("0.1")


async def test_errors_never_leak_websockets_exceptions(clock: VirtualClock, hmac_credentials: Credentials) -> None:
    client = WsApiClient("ws://127.0.0.1:9/nothing", hmac_credentials, clock=clock)
    with pytest.raises(NetworkError):
        await client.account_balance()
    bad = WsApiClient("not a url", hmac_credentials, clock=clock)
    with pytest.raises(NetworkError):
        await bad.account_balance()


# -- weights as the exchange counts them (PROTOCOL.md §4: the v1 weights are contested) ---------------------------


@pytest.mark.parametrize("charged", [10, 5])
async def test_the_client_learns_what_each_method_costs_and_books_it(
    sim: ExchangeSimulator, client: WsApiClient, charged: int
) -> None:
    sim.ip.set_v1_weight(charged)
    for _ in range(3):
        await asyncio.gather(client.fetch_account_status(), client.fetch_account_balance(v2=False))
        fetched = await client.fetch_account_status(v2=True)
    assert client.weights.of("account.status") == charged
    assert client.weights.of("account.balance") == charged
    assert client.weights.of("v2/account.status") == 5
    assert client.weights.of("session.status") == 2
    # Nobody else spends on this IP: what the meter calls this app's is exactly what the exchange counted.
    reading = fetched.weight
    assert reading is not None and reading.own == reading.count == sim.weight_count()
    assert client.own_weight() == sim.own_weight()


async def test_other_programs_spending_between_two_replies_is_not_a_methods_weight(
    sim: ExchangeSimulator, client: WsApiClient
) -> None:
    await client.fetch_account_status(v2=True)
    sim.spend_weight(40)  # a bot on the same IP, between two of our requests
    await client.fetch_account_status(v2=True)
    assert client.weights.of("v2/account.status") == 5
    sim.spend_weight(3)  # a small one: the difference is 8, but 5 was seen already, the smallest stands
    await client.fetch_account_status(v2=True)
    assert client.weights.of("v2/account.status") == 5


def test_a_weight_table_keeps_the_smallest_plausible_difference() -> None:
    table = WeightTable()
    assert table.of("account.status") == 10  # contested: the higher is assumed until the exchange says
    assert table.observe("account.status", 12) and table.of("account.status") == 12
    assert table.observe("account.status", 5) and table.of("account.status") == 5
    assert not table.observe("account.status", 10)  # larger than seen: someone else spent between
    assert not table.observe("v2/account.status", 400)  # far past the documented 5: not the method's
    assert not table.observe("v2/account.status", 0)  # the count did not move with it
    assert table.of("v2/account.status") == 5


def test_the_ledger_corrects_a_booking_and_counts_only_what_was_sent_before() -> None:
    ledger = WeightLedger()
    first = ledger.book(T0, 10)
    second = ledger.book(T0 + 1, 5)
    ledger.correct(first, 5)  # it cost 5 as the exchange counted it
    assert ledger.own(T0 + 2) == 10
    assert ledger.own_upto(first, T0 + 2) == 5  # the reply to the first counts the first alone
    assert ledger.own_upto(second, T0 + 2) == 10


def test_the_ledger_keeps_its_sums_right_through_windows_edges_and_corrections() -> None:
    """The running totals against a plain sum of what was booked, over many windows, bookings across an edge
    (within the clock's doubt) and corrections of bookings both current and still in flight."""
    rng = random.Random(5)
    ledger = WeightLedger()
    booked: dict[int, tuple[range, int]] = {}  # booking → (its windows, its weight)
    now = T0
    for _ in range(3000):
        now += rng.randint(0, 400)
        doubt = rng.choice((0, 0, 0, 30))
        weight = rng.choice((1, 2, 5, 10))
        booking = ledger.book(now, weight, uncertainty_ms=doubt)
        booked[booking] = (range((now - doubt) // 60_000, (now + doubt) // 60_000 + 1), weight)
        if rng.random() < 0.2:
            corrected = rng.choice([b for b in booked if b >= booking - 5])
            cost = rng.choice((1, 5, 10))
            ledger.correct(corrected, cost)
            if (now // 60_000) - 1 <= booked[corrected][0].stop:  # still kept (the ledger forgets old windows)
                booked[corrected] = (booked[corrected][0], cost)
        window = now // 60_000
        mine = {b: w for b, (windows, w) in booked.items() if window in windows}
        assert ledger.own(now) == sum(mine.values())
        upto = rng.choice(list(mine))
        assert ledger.own_upto(upto, now) == sum(w for b, w in mine.items() if b <= upto)


async def test_an_hmac_key_probes_the_clock_once_not_on_every_connection(
    sim: ExchangeSimulator, client: WsApiClient, clock: VirtualClock
) -> None:
    """It cannot hold a session, so session.status told it only the time: on a link that drops after every few
    requests, that probe was one of the few each connection answered."""
    for _ in range(4):
        await drive(clock, client.fetch_account_status(v2=True))  # a reconnect waits its second of backoff
        await sim.drop_connections()
        await until(lambda: not client.connected)
    assert client.connections_opened == 4
    assert [m for _, m in sim.requests].count("session.status") == 1
    await clock.advance(3601)  # an hour on: the offset is measured again
    await drive(clock, client.fetch_account_status(v2=True))
    assert [m for _, m in sim.requests].count("session.status") == 2


async def test_without_a_server_time_on_the_connection_the_rest_endpoint_measures_the_clock(
    sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    sim.faults.clock_skew_ms = 4_000

    async def refused() -> object:
        raise RequestRejected("session.status rejected", status=400, code=-1100)

    measured = await clocksync.measure(clock, refused, time_url=sim.time_url, timeout=5)
    assert measured is not None and measured.ms == 4_000  # the virtual clock stands still: no round trip to halve
    assert await clocksync.measure(clock, refused, time_url=None, timeout=5) is None
    assert await clocksync.measure(clock, refused, time_url="http://127.0.0.1:9/none", timeout=1) is None
