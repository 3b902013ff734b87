"""The user-data stream and pushes merged into the feed, over real sockets, with the weight budget measured."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from services.backoff import Backoff
from services.client import WsApiClient
from services.clock import VirtualClock
from services.endpoints import Credentials
from services.events import BalanceChangeEvent, MarginCallEvent
from services.feed import AccountFeed
from services.models import AccountUpdate, LinkState
from services.simulator import ExchangeSimulator, SimAsset
from services.stream import StreamItem, StreamState, UserDataStream
from services.weight import WeightBudget
from tests.helpers import Collector, Recorder, drive, until


class StreamReader(Collector[StreamItem]):
    def __init__(self, stream: UserDataStream) -> None:
        super().__init__(stream.events())

    @property
    def states(self) -> list[str]:
        return [i.state for i in self.items if isinstance(i, StreamState)]

    @property
    def updates(self) -> list[AccountUpdate]:
        return [i for i in self.items if isinstance(i, AccountUpdate)]


@pytest.fixture
async def stream(client: WsApiClient, sim: ExchangeSimulator) -> AsyncIterator[UserDataStream]:
    yield UserDataStream(client, sim.stream_url, backoff=Backoff(rng=random.Random(8)))


def stream_count(sim: ExchangeSimulator) -> int:
    return len(sim.user_data.connections())


async def test_the_stream_uses_the_query_form_naming_every_event_and_receives_pushes(
    stream: UserDataStream, sim: ExchangeSimulator
) -> None:
    reader = StreamReader(stream)
    await until(lambda: "live" in reader.states)
    assert stream.listen_key is not None
    assert stream.url_for(stream.listen_key) == (
        f"{sim.stream_url}/private/ws?listenKey={stream.listen_key}"
        "&events=ACCOUNT_UPDATE/ORDER_TRADE_UPDATE/MARGIN_CALL/ACCOUNT_CONFIG_UPDATE/listenKeyExpired"
    )
    sent = await sim.push_balance_change("USDT", "25.5")
    await until(lambda: len(reader.updates) == 1)
    update = reader.updates[0]
    assert update.event_time == sent["E"]
    assert update.data.balances[0].wallet_balance == Decimal(sent["a"]["B"][0]["wb"])
    await reader.stop()


async def test_unknown_and_malformed_events_are_ignored(stream: UserDataStream, sim: ExchangeSimulator) -> None:
    reader = StreamReader(stream)
    await until(lambda: "live" in reader.states)
    await sim.push({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {}})
    await sim.push({"e": "ACCOUNT_UPDATE", "E": 2, "a": {"B": [{"a": "USDT", "wb": "not a number"}]}})
    await sim.push_balance_change("BTC", "0.1")
    await until(lambda: len(reader.updates) == 1)
    assert reader.updates[0].data.balances[0].asset == "BTC"
    assert reader.states == ["connecting", "live"]
    await reader.stop()


async def test_an_expired_key_is_replaced(stream: UserDataStream, sim: ExchangeSimulator, clock: VirtualClock) -> None:
    reader = StreamReader(stream)
    await until(lambda: "live" in reader.states)
    first_key = stream.listen_key
    await sim.expire_listen_keys()
    await until(lambda: reader.states.count("live") == 2, clock=clock)
    assert stream.listen_key not in (None, first_key)
    assert stream.connections_opened == 2
    await sim.push_balance_change("USDT", "1")
    await until(lambda: len(reader.updates) == 1)
    await reader.stop()


async def test_the_key_is_pinged_and_outlives_its_sixty_minutes(
    stream: UserDataStream, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    reader = StreamReader(stream)
    await until(lambda: "live" in reader.states)
    key = stream.listen_key
    assert key is not None
    await until(lambda: sim.clock.monotonic() > 3 * 3600, clock=clock, step=60, limit=4 * 3600)
    pings = [t for t, method in sim.requests if method == "userDataStream.ping"]
    assert len(pings) >= 7
    assert all(b - a <= 30 * 60 * 1000 for a, b in zip([pings[0] - 25 * 60 * 1000, *pings], pings, strict=False))
    assert sim.user_data.listen_key_alive(key)
    assert stream.listen_key == key and stream.connections_opened == 1
    await reader.stop()


async def test_a_key_the_exchange_forgot_is_replaced_at_the_next_ping(
    stream: UserDataStream, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    reader = StreamReader(stream)
    await until(lambda: "live" in reader.states)
    first_key = stream.listen_key
    sim.user_data.listen_keys.clear()  # gone without a word: the next ping gets -1125
    await until(lambda: reader.states.count("live") == 2, clock=clock, step=30, limit=3600)
    assert stream.listen_key != first_key
    await reader.stop()


async def test_a_dropped_stream_reconnects_while_the_api_stays_up(
    stream: UserDataStream, client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    reader = StreamReader(stream)
    await until(lambda: "live" in reader.states)
    api_connections = client.connections_opened
    sim.drop_streams()
    await until(lambda: reader.states.count("live") == 2, clock=clock)
    assert "reconnecting" in reader.states
    assert client.connections_opened == api_connections  # the API connection was not touched
    await sim.push_balance_change("ETH", "1")
    await until(lambda: len(reader.updates) == 1)
    await reader.stop()


async def test_a_dropped_api_connection_leaves_the_stream_up(
    stream: UserDataStream, client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    reader = StreamReader(stream)
    await until(lambda: "live" in reader.states)
    assert client.connections_opened == 1
    for conn in sim.api.connections():
        conn.ws.transport.abort()
    await sim.push_balance_change("USDT", "2")
    await until(lambda: len(reader.updates) == 1)
    assert reader.states == ["connecting", "live"]
    # the key's next ping finds the API connection gone and opens a new one on its own
    assert await drive(clock, client.user_data_stream_ping()) == stream.listen_key
    assert client.connections_opened == 2
    assert reader.states == ["connecting", "live"]
    await reader.stop()


# -- merged into the feed -----------------------------------------------------------------------------------------


@pytest.fixture
async def feed(client: WsApiClient, stream: UserDataStream) -> AsyncIterator[Recorder]:
    account_feed = AccountFeed(client, interval=2.0, stream=stream, backoff=Backoff(rng=random.Random(1)))
    recorder = Recorder(account_feed)
    yield recorder
    await recorder.stop()


async def streaming(recorder: Recorder, clock: VirtualClock) -> None:
    await until(lambda: recorder.feed.streaming and len(recorder.snapshots) >= 1, clock=clock, step=0.1)


async def test_a_push_is_applied_at_once_and_reconciled_by_a_poll(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await streaming(feed, clock)
    polls_before = len([m for _, m in sim.requests if m.endswith("account.status")])
    sent = await sim.push_balance_change("USDT", "-100.25", reason="FUNDING_FEE")
    await until(lambda: feed.snapshots[-1].cause == "push")
    row = feed.snapshots[-1].balances["USDT"]
    assert row.wallet_balance == Decimal(sent["a"]["B"][0]["wb"])
    assert row.cross_wallet_balance == Decimal(sent["a"]["B"][0]["cw"])
    assert row.source == "push" and row.source_method == "ACCOUNT_UPDATE FUNDING_FEE"
    assert row.update_time_ms == sent["T"]  # when the change happened, as a poll's updateTime says it
    # no poll yet; one shortly after, which brings available and max withdraw up to date
    assert len([m for _, m in sim.requests if m.endswith("account.status")]) == polls_before
    await until(lambda: feed.snapshots[-1].cause == "poll", clock=clock, step=0.25, limit=5)
    polled = feed.snapshots[-1].balances["USDT"]
    assert polled.wallet_balance == row.wallet_balance
    assert polled.available_balance == Decimal(sim.last_result["v2/account.status"]["assets"][0]["availableBalance"])


async def test_older_events_are_ignored_and_a_stale_poll_cannot_undo_a_push(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await streaming(feed, clock)
    account_feed = feed.feed
    now = sim.server_time_ms()

    def update(event_time: int, wallet: str) -> AccountUpdate:
        return AccountUpdate.model_validate(
            {"e": "ACCOUNT_UPDATE", "E": event_time, "T": event_time,
             "a": {"m": "ORDER", "B": [{"a": "BTC", "wb": wallet, "cw": wallet, "bc": "0"}]}}
        )  # fmt: skip

    account = account_feed.account  # the account core the feed moves events into
    assert account.account_update(update(now + 60_000, "9.00000000"), received_at_ms=now).changed
    assert not account.account_update(update(now + 30_000, "1.00000000"), received_at_ms=now).changed  # older
    assert account.account_update(update(now + 60_000, "9.50000000"), received_at_ms=now).changed  # later word
    shown = account_feed.snapshot()
    assert shown is not None and shown.balances["BTC"].wallet_balance == Decimal("9.50000000")
    # the exchange's own row is older than that push: the poll keeps the pushed wallet
    fresh = await account_feed.refresh()
    assert fresh.balances["BTC"].wallet_balance == Decimal("9.50000000")
    assert fresh.balances["BTC"].source == "push"
    assert fresh.balances["USDT"].source == "poll"


async def test_margin_call_and_config_update(feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock) -> None:
    await streaming(feed, clock)
    await sim.push_margin_call()
    await until(lambda: any(isinstance(e, MarginCallEvent) for e in feed.events))
    call = next(e for e in feed.events if isinstance(e, MarginCallEvent)).margin_call
    assert call.positions[0].symbol == "ETHUSDT"
    await sim.push_multi_assets(True)
    await until(lambda: feed.snapshots[-1].multi_assets_margin is True)
    # a leverage change says nothing about balances
    await sim.push({"e": "ACCOUNT_CONFIG_UPDATE", "E": sim.server_time_ms(), "ac": {"s": "BTCUSDT", "l": 25}})
    await until(lambda: feed.snapshots[-1].cause == "poll", clock=clock, step=0.25)
    assert feed.snapshots[-1].multi_assets_margin is True


async def test_polling_slows_to_a_reconcile_while_the_stream_is_live(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await streaming(feed, clock)
    start = len(feed.snapshots)
    await clock.advance(300, step=1.0)
    await asyncio.sleep(0.01)
    polls = [s for s in feed.snapshots[start:] if s.cause == "poll"]
    assert 4 <= len(polls) <= 6  # about once a minute
    assert feed.feed.status.stream == "live"


async def test_a_poll_catches_up_with_a_push_by_the_pushs_transaction_time(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    """A poll's updateTime is the asset's last transaction, which the push carries as T (its E a few ms later): held
    against E, no poll ever caught up with a push, and the pushed figures outranked every poll after them."""
    await streaming(feed, clock)
    sent = await sim.push_balance_change("USDT", "-3.5")
    assert sent["T"] < sent["E"]
    await until(lambda: feed.snapshots[-1].cause == "push")
    await until(lambda: feed.snapshots[-1].cause == "poll", clock=clock, step=0.25, limit=5)
    row = feed.snapshots[-1].balances["USDT"]
    assert row.source == "poll" and row.update_time_ms == sent["T"]
    assert row.wallet_balance == Decimal(sent["a"]["B"][0]["wb"])


async def test_a_pushed_position_is_booked_under_its_margin_asset(
    client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    """A credits-mode account margins BTCUSDT in BNFCR: the push names it (a.P[].ma); the symbol's suffix does not."""
    from services.marks import MarkPriceStream

    sim.account.assets["BNFCR"] = SimAsset("BNFCR", Decimal("5000"), Decimal(1))
    marks = MarkPriceStream(sim.stream_url, clock=clock, backoff=Backoff(rng=random.Random(3)))
    stream = UserDataStream(client, sim.stream_url, backoff=Backoff(rng=random.Random(8)))
    recorder = Recorder(AccountFeed(client, interval=2.0, stream=stream, marks=marks))
    try:
        await streaming(recorder, clock)
        await sim.change_position("XRPUSDT", "BOTH", "1000", "0.5", margin_asset="BNFCR")
        await until(lambda: any(p.symbol == "XRPUSDT" for p in recorder.snapshots[-1].positions), clock=clock, step=0.1)
        xrp = next(p for p in recorder.snapshots[-1].positions if p.symbol == "XRPUSDT")
        assert xrp.margin_asset == "BNFCR"
        await until(lambda: "xrpusdt@markPrice@1s" in sim.market_subscriptions(), clock=clock, step=0.1)
        await sim.move_marks({**{s: sim.account.marks[s] for s in sim.account.marks}, "XRPUSDT": "0.6"})
        await until(lambda: recorder.snapshots[-1].balances["BNFCR"].upnl_source == "mark", clock=clock, step=0.1)
        assert recorder.snapshots[-1].balances["BNFCR"].cross_un_pnl == Decimal(1000) * Decimal("0.1")
    finally:
        await recorder.stop()


async def test_a_push_for_an_asset_no_poll_listed_is_a_change_from_an_unknown_balance(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await streaming(feed, clock)
    sim.account.assets["XRP"] = SimAsset("XRP", Decimal(0), Decimal("0.5"))  # new since the last poll
    await sim.push_balance_change("XRP", "250", reason="DEPOSIT")
    await until(lambda: any(isinstance(e, BalanceChangeEvent) and e.change.asset == "XRP" for e in feed.events))
    [change] = [e.change for e in feed.events if isinstance(e, BalanceChangeEvent) and e.change.asset == "XRP"]
    assert (change.old_wallet, change.new_wallet, change.delta, change.reason) == (None, Decimal(250), None, "DEPOSIT")


async def test_ten_minutes_of_pushes_every_300_ms_stay_within_the_budget(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await streaming(feed, clock)
    first_window = sim.server_time_ms() // 60_000
    pushed = []
    for _ in range(2000):  # ten minutes
        pushed.append(await sim.push_balance_change("USDT", "0.01"))
        await clock.advance(0.3)
        await asyncio.sleep(0)
    await until(lambda: feed.snapshots[-1].balances["USDT"].update_time_ms == pushed[-1]["T"], clock=clock)
    allowance = WeightBudget().allowance(2400, streaming=True)
    windows = range(first_window, sim.server_time_ms() // 60_000 + 1)
    spent = [sim.own_weight(w) for w in windows]
    # The window in which the stream came to be trusted began under the polling share (an unproven stream is not
    # relied on); every window after it holds the streaming share.
    assert spent[0] <= WeightBudget().allowance(2400, streaming=False), spent
    assert max(spent[1:]) <= allowance, spent
    assert sum(spent) > 10 * 50  # and it did keep reconciling: not silence
    # every push reached the feed, in order
    push_times = [s.balances["USDT"].update_time_ms for s in feed.snapshots if s.cause == "push"]
    assert push_times == sorted(push_times)
    assert set(push_times) >= {event["T"] for event in pushed[-50:]}
    assert sim.ip.bans == 0


async def test_a_busy_ip_makes_the_feed_back_off_and_it_is_never_rate_limited(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async def polls_in_ten_minutes(others: int) -> tuple[int, list[LinkState]]:
        sim.ip.others_per_window = others
        sim.requests.clear()
        async with WsApiClient(sim.ws_url, hmac_credentials, clock=clock) as client:
            recorder = Recorder(AccountFeed(client, interval=1.0))  # polling only: the larger budget
            await until(lambda: len(recorder.snapshots) >= 1, clock=clock)
            await until(
                lambda: len(sim.requests) > 0 and clock.monotonic() > start + 600, clock=clock, step=0.5, limit=700
            )
            await recorder.stop()
        return len([m for _, m in sim.requests if m.endswith("account.status")]), recorder.states

    start = clock.monotonic()
    quiet, _ = await polls_in_ten_minutes(0)
    start = clock.monotonic()
    busy, states = await polls_in_ten_minutes(1920)  # other programs use 80 % of the IP's weight
    assert busy < quiet / 2
    assert LinkState.RATE_LIMITED not in states and LinkState.BANNED not in states
    assert sim.ip.bans == 0
    assert quiet * 5 <= 10 * WeightBudget().allowance(2400, streaming=False) + 50  # the polling budget held


async def test_the_listen_key_is_stopped_on_exit(
    client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    stream = UserDataStream(client, sim.stream_url)
    recorder = Recorder(AccountFeed(client, stream=stream))
    await until(lambda: recorder.feed.streaming, clock=clock, step=0.1)
    assert sim.user_data.listen_keys
    await recorder.stop()
    assert not sim.user_data.listen_keys
    assert "userDataStream.stop" in [m for _, m in sim.requests]


# -- is the stream really delivering? (PROTOCOL.md §6.4) -------------------------------------------------------------


async def test_an_open_stream_is_unproven_until_a_reconcile_finds_nothing_missed(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: feed.feed.stream_state == "unproven", clock=clock, step=0.1)
    assert not feed.feed.streaming  # open is not trusted: polling stays at the interval
    assert feed.feed.effective_interval() == 2.0
    await until(lambda: feed.feed.stream_state == "live", clock=clock, step=0.25, limit=10)
    assert feed.feed.effective_interval() == 60.0
    assert feed.streams.count("unproven") == 1 and feed.streams.count("live") == 1


async def test_a_stream_that_delivers_is_trusted_at_once(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: feed.feed.stream_state == "unproven", clock=clock, step=0.1)
    await sim.push_balance_change("USDT", "1")
    await until(lambda: feed.feed.stream_state == "live")


async def test_a_mute_stream_is_found_out_at_the_next_reconcile_and_polling_returns_to_the_interval(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await streaming(feed, clock)
    sim.faults.stream_mute = True  # open, and delivering nothing, while the balance changes
    await sim.push_balance_change("USDT", "-42")
    assert feed.snapshots[-1].cause == "poll"
    # the next reconcile (within a minute) finds USDT changed with no push for it
    await until(lambda: feed.feed.stream_state == "silent", clock=clock, step=1.0, limit=65)
    status = feed.feed.status
    assert status.stream == "silent" and "USDT" in status.stream_detail
    assert feed.feed.effective_interval() == 2.0  # back to the interval
    assert feed.feed.allowance() == 240  # within the polling share of the budget
    polls_before = len([m for _, m in sim.requests if m.endswith("account.status")])
    await clock.advance(10, step=0.5)
    await asyncio.sleep(0.01)
    assert len([m for _, m in sim.requests if m.endswith("account.status")]) >= polls_before + 4
    # it is trusted again once it delivers
    sim.faults.stream_mute = False
    await sim.push_balance_change("USDT", "1")
    await until(lambda: feed.feed.stream_state == "live")
    assert feed.feed.effective_interval() == 60.0


async def test_a_push_in_flight_when_a_poll_lands_is_not_taken_for_a_miss(
    feed: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await streaming(feed, clock)
    sim.faults.stream_mute = True
    await sim.push_balance_change("BTC", "0.1")  # the exchange changed it just now; its push is "on the way"
    await feed.feed.refresh()
    assert feed.feed.stream_state == "live"  # too young to judge
    sim.faults.stream_mute = False
    await sim.push_balance_change("BTC", "0")  # the push arrives (same wallet, now told)
    await until(lambda: feed.snapshots[-1].cause == "push")
    await clock.advance(3)
    await feed.feed.refresh()
    assert feed.feed.stream_state == "live"
