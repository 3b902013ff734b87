"""The feed over a real socket with a virtual clock: polling pace, control, and every failure as a state."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator

import pytest

from services.backoff import Backoff
from services.client import WsApiClient
from services.clock import VirtualClock
from services.endpoints import Credentials
from services.events import StatusEvent
from services.feed import AccountFeed
from services.models import LinkState
from services.simulator import ExchangeSimulator, amount
from tests.helpers import TEST_API_KEY, TEST_SECRET, Recorder, until


@pytest.fixture
async def feed(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> AsyncIterator[AccountFeed]:
    client = WsApiClient(
        sim.ws_url, hmac_credentials, clock=clock, request_timeout=2.0, backoff=Backoff(rng=random.Random(4))
    )
    yield AccountFeed(client, interval=2.0, backoff=Backoff(rng=random.Random(9)))
    await client.close()


@pytest.fixture
async def recorder(feed: AccountFeed) -> AsyncIterator[Recorder]:
    rec = Recorder(feed)
    yield rec
    await rec.stop()


def polls(sim: ExchangeSimulator) -> list[str]:
    return [m for _, m in sim.requests if m.endswith("account.status")]


async def test_first_poll_is_full_then_light(recorder: Recorder, sim: ExchangeSimulator, clock: VirtualClock) -> None:
    await until(lambda: len(recorder.snapshots) >= 3, clock=clock, step=1.0)
    assert recorder.states[:2] == [LinkState.CONNECTING, LinkState.LIVE]
    assert polls(sim)[:3] == ["account.status", "v2/account.status", "v2/account.status"]
    # Each reply is applied as it comes: the full poll's two may be told apart, the flags once account.balance is in.
    flagged = [s for s in recorder.snapshots if s.balances["USDT"].margin_available is not None]
    first = flagged[0]
    assert first.multi_assets_margin is False
    assert flagged[1].multi_assets_margin is False  # remembered from the full poll
    assert first.balances["USDT"].source_method in ("account.status", "account.balance")
    # Single-asset mode: account.status omits marginAvailable, account.balance says it for every asset.
    assert "marginAvailable" not in sim.last_result["account.status"]["assets"][0]
    for snapshot in flagged[:3]:
        assert {row.margin_available for row in snapshot.balances.values()} <= {True, False}
        assert snapshot.balances["USDT"].margin_available is True
        assert snapshot.balances["BTC"].margin_available is False
    # The weight of each refresh: 10 for the full one, 5 after.
    methods = [m for _, m in sim.requests if m.endswith(("account.status", "account.balance"))]
    assert sorted(methods[:2]) == ["account.balance", "account.status"]
    assert methods[2:4] == ["v2/account.status", "v2/account.status"]
    assert first.totals is not None and first.weight is not None
    assert first.balances["USDT"].wallet_balance == sim.account.assets["USDT"].wallet


async def test_polls_keep_their_interval_and_never_overlap(
    recorder: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: len(recorder.snapshots) >= 6, clock=clock, step=0.5)
    times = [t for t, m in sim.requests if m.endswith("account.status")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 2000 for gap in gaps), gaps


async def test_refresh_now_pause_resume_and_interval(
    recorder: Recorder, feed: AccountFeed, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: len(recorder.snapshots) >= 1, clock=clock)
    feed.set_interval(60)
    await until(lambda: len(recorder.snapshots) >= 2, clock=clock)  # the interval change wakes the feed
    count = len(polls(sim))
    feed.refresh_now()
    await until(lambda: len(polls(sim)) == count + 1)  # no clock movement needed
    feed.pause()
    await until(lambda: recorder.states[-1] is LinkState.PAUSED)
    paused_at = len(polls(sim))
    await clock.advance(600, step=30)
    assert len(polls(sim)) == paused_at
    feed.resume()
    await until(lambda: recorder.states[-1] is LinkState.LIVE)
    assert len(polls(sim)) == paused_at + 1
    assert feed.set_interval(0.01) == 0.5 and feed.set_interval(10_000) == 300


async def test_new_connection_asks_the_full_status_again(
    recorder: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: len(recorder.snapshots) >= 2, clock=clock)
    sim.account.multi_assets = True
    await sim.drop_connections()
    await until(lambda: recorder.snapshots[-1].multi_assets_margin is True, clock=clock)
    assert recorder.feed.client.connections_opened == 2
    assert recorder.states[-1] is LinkState.LIVE


async def test_multi_assets_flag_is_refreshed_every_full_interval(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async with WsApiClient(sim.ws_url, hmac_credentials, clock=clock) as client:
        rec = Recorder(AccountFeed(client, interval=5, full_every=60))
        await until(lambda: len(rec.snapshots) >= 1, clock=clock)
        sim.account.multi_assets = True
        await until(lambda: rec.snapshots[-1].multi_assets_margin is True, clock=clock, step=1.0, limit=70)
        await rec.stop()


async def test_credentials_rejected_stops_polling_until_asked(
    recorder: Recorder, feed: AccountFeed, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: len(recorder.snapshots) >= 1, clock=clock)
    sim.revoke_key(TEST_API_KEY)
    await until(lambda: recorder.states[-1] is LinkState.CREDENTIALS_REJECTED, clock=clock)
    status = feed.status
    assert "revoked" in status.detail and "-2015" in status.detail
    sent = len(sim.requests)
    await clock.advance(3600, step=60)
    assert len(sim.requests) == sent  # no retry storm
    sim.keyring.keys[TEST_API_KEY].revoked = False
    feed.refresh_now()
    await until(lambda: recorder.states[-1] is LinkState.LIVE, clock=clock)


async def test_rate_limit_waits_for_the_window_and_recovers(
    recorder: Recorder, feed: AccountFeed, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: len(recorder.snapshots) >= 1, clock=clock)
    sim.spend_weight(2400)  # other programs used the IP's whole minute
    await until(lambda: recorder.states[-1] is LinkState.RATE_LIMITED, clock=clock)
    status = feed.status
    assert status.retry_at_ms is not None
    assert status.retry_at_ms == (sim.server_time_ms() // 60_000 + 1) * 60_000
    sent = len(sim.requests)
    feed.refresh_now()  # a key press does not override the exchange
    await asyncio.sleep(0.01)
    retry_at = status.retry_at_ms
    await until(lambda: sim.server_time_ms() >= retry_at - 1000, clock=clock, step=1.0)
    assert len(sim.requests) == sent
    await until(lambda: recorder.states[-1] is LinkState.LIVE, clock=clock, step=1.0)
    assert sim.ip.bans == 0


async def test_ban_is_shown_as_banned_with_its_end(
    recorder: Recorder, feed: AccountFeed, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: len(recorder.snapshots) >= 1, clock=clock)
    sim.ban(180)
    await until(lambda: recorder.states[-1] is LinkState.BANNED, clock=clock)
    assert feed.status.retry_at_ms == sim.ip.banned_until_ms
    await until(lambda: recorder.states[-1] is LinkState.LIVE, clock=clock, step=5.0)


async def test_exchange_down_then_back_on_the_same_port(clock: VirtualClock, hmac_credentials: Credentials) -> None:
    first = ExchangeSimulator(clock=clock)
    first.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    await first.start()
    client = WsApiClient(first.ws_url, hmac_credentials, clock=clock, backoff=Backoff(rng=random.Random(1)))
    rec = Recorder(AccountFeed(client, interval=2, backoff=Backoff(rng=random.Random(2))))
    await until(lambda: len(rec.snapshots) >= 1, clock=clock)
    await first.stop()
    await until(lambda: rec.states.count(LinkState.RECONNECTING) >= 3, clock=clock)
    reconnecting = [
        e.status for e in rec.events if isinstance(e, StatusEvent) and e.status.state is LinkState.RECONNECTING
    ]
    assert [s.attempt for s in reconnecting[:3]] == [1, 2, 3]
    assert all(s.retry_at_ms is not None and s.retry_at_ms > s.since_ms for s in reconnecting)
    second = ExchangeSimulator(clock=clock, port=first.port)
    second.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with second:
        await until(lambda: rec.states[-1] is LinkState.LIVE, clock=clock, step=1.0)
        count = len(rec.snapshots)
        await until(lambda: len(rec.snapshots) > count, clock=clock)
    await rec.stop()
    await client.close()


async def test_protocol_faults_are_errors_that_recover(
    recorder: Recorder, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    await until(lambda: len(recorder.snapshots) >= 1, clock=clock)
    good = recorder.snapshots[-1]
    sim.faults.bad_amount_next = 1
    await until(lambda: recorder.states[-1] is LinkState.ERROR, clock=clock)
    assert recorder.feed.snapshot() is not None  # the last good numbers stay
    assert recorder.snapshots[-1].balances == good.balances
    await until(lambda: recorder.states[-1] is LinkState.LIVE, clock=clock)


async def test_a_day_and_a_half_of_polling_rolls_connections_over(
    clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    sim = ExchangeSimulator(clock=clock)
    sim.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with sim:
        client = WsApiClient(sim.ws_url, hmac_credentials, clock=clock, max_connection_age=23 * 3600)
        rec = Recorder(AccountFeed(client, interval=120))
        await until(lambda: len(rec.snapshots) >= 1, clock=clock)
        await until(lambda: len(rec.snapshots) > 36 * 30, clock=clock, step=60, limit=37 * 3600)
        assert client.connections_opened == 2
        assert LinkState.RECONNECTING not in rec.states  # rolled over before the server's 24 h cut
        await rec.stop()
        await client.close()


async def test_against_an_exchange_charging_10_for_v1_the_meter_and_the_budget_are_true(
    recorder: Recorder, feed: AccountFeed, sim: ExchangeSimulator, clock: VirtualClock
) -> None:
    """The change log raised account.status/account.balance to 10, their pages say 5: the meter said "this app 28"
    with the IP's count at 38 and nobody else on it, and the budget spent a third more than it thought."""
    sim.ip.set_v1_weight(10)
    first = sim.server_time_ms() // 60_000 + 1
    await until(lambda: clock.monotonic() >= 300, clock=clock, step=1.0, limit=310)  # five minutes of polling
    readings = [s.weight for s in recorder.snapshots if s.weight is not None]
    assert readings and all(r.own == r.count for r in readings), [
        (r.own, r.count) for r in readings if r.own != r.count
    ]
    spent = [sim.own_weight(w) for w in range(first, sim.server_time_ms() // 60_000)]
    assert spent and max(spent) <= feed.allowance() == 240, spent
    assert feed.client.weights.of("account.status") == 10


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("fault", ["drop_after", "malformed_every", "silent_after"])
async def test_a_poor_link_still_shows_the_balances_within_seconds(
    recorder: Recorder, sim: ExchangeSimulator, clock: VirtualClock, fault: str, n: int
) -> None:
    """Each reply is a fact on its own: on a link that drops after every n requests, answers nothing more after n,
    or spoils every nth reply, the replies that do come show at once (a refresh was once thrown away unless all of
    its four calls succeeded, and the trader saw nothing but RECONNECTING while good numbers were arriving)."""
    setattr(sim.faults, fault, n)
    # A request the exchange leaves unanswered times out on the loop's own clock (it is about the network): short
    # here, so that the calls a silent connection did not answer are asked again on the next within the test.
    recorder.feed.client.request_timeout = 0.3
    exact = {asset: amount(a.wallet) for asset, a in sim.account.assets.items()}

    def shown() -> bool:
        snapshots = recorder.snapshots
        return (
            bool(snapshots) and {a: format(r.wallet_balance, "f") for a, r in snapshots[-1].balances.items()} == exact
        )

    await until(shown, clock=clock, step=0.25, limit=5)
    assert clock.monotonic() <= 5
    # and it goes on: every call of a full refresh is answered in time, across connections
    await until(lambda: feed_has_everything(recorder), clock=clock, step=0.25, limit=120)


def feed_has_everything(recorder: Recorder) -> bool:
    last = recorder.snapshots[-1] if recorder.snapshots else None
    return (
        last is not None
        and last.totals is not None
        and all(r.margin_available is not None for r in last.balances.values())
        and bool(last.positions)
    )
