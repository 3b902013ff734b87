"""Mark prices and positions over real sockets: the /market stream, the feed carrying uPnL at no weight, faults."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import websockets

from services.backoff import Backoff
from services.client import WsApiClient
from services.clock import VirtualClock
from services.events import SnapshotEvent
from services.feed import AccountFeed
from services.marks import MarkPriceStream, MarkState
from services.models import AccountSnapshot
from services.positions import MarkPrice
from services.simulator import ExchangeSimulator
from services.stream import UserDataStream
from tests.helpers import Collector, Recorder, until


def expected_upnl(sim: ExchangeSimulator, asset: str) -> Decimal:
    """Σ positionAmt × (mark − entry) over the asset's cross positions, from the simulator's own state."""
    return sum(
        (
            p.amount * (sim.account.marks[p.symbol] - p.entry)
            for p in sim.account.positions.values()
            if p.margin_asset == asset
        ),
        Decimal(0),
    )


@pytest.fixture
def marks(sim: ExchangeSimulator, clock: VirtualClock) -> MarkPriceStream:
    return MarkPriceStream(sim.stream_url, clock=clock, backoff=Backoff(rng=random.Random(3)))


async def test_the_stream_follows_the_symbols_held_and_reads_marks(
    marks: MarkPriceStream, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    reader = Collector(marks.events())
    await until(lambda: any(isinstance(i, MarkState) and i.state == "idle" for i in reader.items))
    assert marks.connections_opened == 0  # nothing held: no connection
    marks.follow({"BTCUSDT", "ETHUSDT"})
    await until(lambda: sim.market_subscriptions() == {"btcusdt@markPrice@1s", "ethusdt@markPrice@1s"})
    await sim.move_marks({"BTCUSDT": "97000.10"})
    await until(lambda: any(isinstance(i, MarkPrice) and i.symbol == "BTCUSDT" for i in reader.items))
    mark = next(i for i in reader.items if isinstance(i, MarkPrice) and i.symbol == "BTCUSDT")
    assert mark.price == Decimal("97000.10000000")
    # a position opens: subscribed on the same connection; one closes: unsubscribed
    marks.follow({"BTCUSDT", "SOLUSDC"})
    await until(
        lambda: sim.market_subscriptions() == {"btcusdt@markPrice@1s", "solusdc@markPrice@1s"}, clock=clock, step=0.1
    )
    assert marks.connections_opened == 1
    # never more than ten messages a second to the server
    sent = marks.messages_sent
    assert all(b - a >= 0.1 for a, b in itertools.pairwise(sent))
    await reader.stop()


async def test_coin_m_rows_are_ignored(marks: MarkPriceStream, sim: ExchangeSimulator) -> None:
    reader = Collector(marks.events())
    marks.follow({"BTCUSDT"})
    await until(lambda: bool(sim.market_subscriptions()))
    conn = sim.market.connections()[0]
    coin_m = {**sim.market.mark_event("BTCUSDT"), "p": "1.00000000", "st": 2}
    await conn.ws.send(__import__("json").dumps({"stream": "btcusdt@markPrice@1s", "data": coin_m}))
    await sim.move_marks({"BTCUSDT": "90000"})
    await until(lambda: any(isinstance(i, MarkPrice) for i in reader.items))
    assert [i.price for i in reader.items if isinstance(i, MarkPrice)] == [Decimal("90000.00000000")]
    await reader.stop()


async def test_a_dropped_market_connection_comes_back_by_itself(
    marks: MarkPriceStream, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    reader = Collector(marks.events())
    marks.follow({"BTCUSDT"})
    await until(lambda: bool(sim.market_subscriptions()))
    assert sim.market.drop() == 1
    await until(lambda: marks.connections_opened == 2 and bool(sim.market_subscriptions()), clock=clock)
    assert any(isinstance(i, MarkState) and i.state == "reconnecting" for i in reader.items)
    await sim.move_marks({"BTCUSDT": "91000"})
    await until(lambda: any(isinstance(i, MarkPrice) and i.price == Decimal("91000.00000000") for i in reader.items))
    await reader.stop()


async def test_every_subscribe_is_acknowledged_even_for_a_symbol_that_does_not_exist(sim: ExchangeSimulator) -> None:
    async with websockets.connect(f"{sim.stream_url}/market/ws") as ws:
        await ws.send('{"method": "SUBSCRIBE", "params": ["nosuchusdt@markPrice@1s"], "id": 7}')
        assert await ws.recv() == '{"result": null, "id": 7}'
        await ws.send('{"method": "LIST_SUBSCRIPTIONS", "id": 8}')
        assert await ws.recv() == '{"result": ["nosuchusdt@markPrice@1s"], "id": 8}'
    async with websockets.connect(f"{sim.stream_url}/market/ws/btcusdt@markPrice@1s") as one:
        await until(lambda: bool(sim.market_subscriptions()))
        await sim.push_marks()
        assert '"e": "markPriceUpdate"' in str(await one.recv())  # the plain form: no envelope


# -- the feed: uPnL carried by marks, at no weight -----------------------------------------------------------------


@pytest.fixture
async def live(
    client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock, marks: MarkPriceStream
) -> AsyncIterator[Recorder]:
    stream = UserDataStream(client, sim.stream_url, backoff=Backoff(rng=random.Random(8)))
    recorder = Recorder(AccountFeed(client, interval=2.0, stream=stream, marks=marks))
    yield recorder
    await recorder.stop()


def mark_snapshots(recorder: Recorder) -> list[AccountSnapshot]:
    return [e.snapshot for e in recorder.items if isinstance(e, SnapshotEvent) and e.snapshot.cause == "mark"]


async def test_marks_moving_every_second_carry_usdt_and_usdc_upnl_within_the_budget(
    live: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: live.feed.streaming and bool(sim.market_subscriptions()), clock=clock, step=0.25)
    first_window = sim.server_time_ms() // 60_000 + 1
    for tick in range(180):  # three minutes of marks walking every second, no pushes
        sim.account.tick(sim.server_time_ms())
        await sim.push_marks(tick)
        target = (expected_upnl(sim, "USDT"), expected_upnl(sim, "USDC"))
        await clock.advance(1.0, step=0.25)

        def caught_up(t: object = target) -> bool:
            return bool(mark_snapshots(live)) and _upnl(mark_snapshots(live)[-1]) == t

        await until(caught_up)
    last = mark_snapshots(live)[-1]
    assert last.balances["USDT"].upnl_source == "mark" and last.totals_source == "mark"
    assert {p.symbol for p in last.positions} == {"BTCUSDT", "ETHUSDT", "SOLUSDC"}
    # the app's own weight stayed inside 5 % of the IP's limit in every whole minute
    spent = [sim.own_weight(w) for w in range(first_window, sim.server_time_ms() // 60_000)]
    assert spent and max(spent) <= 120, spent
    # a burst of marks (three symbols each second) is one paint: a snapshot a second, not one a mark
    assert len(mark_snapshots(live)) <= 180 + 8


def _upnl(snapshot: AccountSnapshot) -> tuple[Decimal, Decimal]:
    return snapshot.balances["USDT"].cross_un_pnl, snapshot.balances["USDC"].cross_un_pnl


async def test_marks_that_stop_are_stale_within_three_seconds_and_polls_take_over(
    live: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: live.feed.streaming and bool(sim.market_subscriptions()), clock=clock, step=0.25)
    await sim.push_marks()
    await until(lambda: live.feed.book.marks_fresh(clock.time_ms()) and bool(mark_snapshots(live)))
    assert live.feed.effective_interval() == 60.0
    await until(lambda: not live.snapshots[-1].marks_stale, clock=clock, step=0.25, limit=1)
    sim.faults.marks_stop = True
    stopped = clock.monotonic()
    await until(lambda: live.snapshots[-1].marks_stale, clock=clock, step=0.25, limit=10)
    assert clock.monotonic() - stopped <= 3.5
    assert live.snapshots[-1].balances["USDT"].upnl_source == "poll"  # the last poll's figure, not a frozen mark
    assert live.feed.effective_interval() == 2.0  # and polling at the interval again
    sim.faults.marks_stop = False
    await sim.push_marks()
    await until(lambda: not live.snapshots[-1].marks_stale, clock=clock, step=0.25, limit=10)


async def test_a_position_opening_and_closing_is_followed(
    live: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: live.feed.streaming and bool(sim.market_subscriptions()), clock=clock, step=0.25)
    await sim.change_position("XRPUSDT", "BOTH", "1000", "0.5")
    await until(lambda: "xrpusdt@markPrice@1s" in sim.market_subscriptions(), clock=clock, step=0.1)
    await sim.move_marks({"XRPUSDT": "0.6"})
    await until(
        lambda: any(p.symbol == "XRPUSDT" and p.source == "mark" for p in live.snapshots[-1].positions),
        clock=clock,
        step=0.25,
    )
    xrp = next(p for p in live.snapshots[-1].positions if p.symbol == "XRPUSDT")
    assert xrp.unrealized == Decimal(1000) * (Decimal("0.6") - Decimal("0.5"))
    await sim.change_position("XRPUSDT", "BOTH", "0", "0")
    await until(lambda: "xrpusdt@markPrice@1s" not in sim.market_subscriptions(), clock=clock, step=0.1)
    assert all(p.symbol != "XRPUSDT" for p in live.snapshots[-1].positions)
    await asyncio.sleep(0)


async def test_a_machine_clock_ahead_of_the_exchange_does_not_hide_the_marks(
    client: WsApiClient, sim: ExchangeSimulator, clock: VirtualClock, marks: MarkPriceStream
) -> None:
    """Polls and marks are compared on the exchange's clock: stamped with the machine's, a poll would outrank every
    mark for as long as the machine's clock is ahead."""
    sim.faults.clock_skew_ms = -2_500  # the exchange's clock runs 2.5 s behind this machine's
    stream = UserDataStream(client, sim.stream_url, backoff=Backoff(rng=random.Random(8)))
    live = Recorder(AccountFeed(client, interval=2.0, stream=stream, marks=marks))
    await until(lambda: live.feed.streaming and bool(sim.market_subscriptions()), clock=clock, step=0.25)
    assert live.feed.client.server_time_ms() < clock.time_ms() - 2_000  # the skew was measured
    sim.account.tick(sim.server_time_ms())
    await sim.push_marks()

    def carried() -> list[AccountSnapshot]:
        return [s for s in mark_snapshots(live) if s.balances["USDT"].upnl_source == "mark"]

    await until(lambda: bool(carried()), clock=clock, step=0.05, limit=1.5)
    assert carried()[-1].balances["USDT"].cross_un_pnl == expected_upnl(sim, "USDT")
    await live.stop()
