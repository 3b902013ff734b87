"""The real app under Pilot against the simulator in each fault mode: it stays up, tells the truth, recovers.

For every fault: no crash and no traceback on screen, the last good numbers kept and marked stale while the
trouble lasts, the right state shown (with its countdown where there is one), and recovery with no key pressed
wherever the exchange allows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from textual.pilot import Pilot

from services.clock import VirtualClock
from services.endpoints import Credentials
from services.models import LinkState
from services.settings import Settings
from services.simulator import ExchangeSimulator
from tests.helpers import TEST_API_KEY, TEST_SECRET, dashboard, factory, started, table, until
from tui.app import BalanceApp
from widgets.status_line import StatusLine


@dataclass
class Run:
    app: BalanceApp
    pilot: Pilot[int]
    sim: ExchangeSimulator
    clock: VirtualClock
    states: list[LinkState]
    streams: list[str]

    def note(self) -> None:
        status = dashboard(self.app).status
        if status is not None:
            if not self.states or self.states[-1] is not status.state:
                self.states.append(status.state)
            if not self.streams or self.streams[-1] != status.stream:
                self.streams.append(status.stream)

    async def until(self, predicate: Callable[[], bool], *, step: float = 0.5, tries: int = 600) -> None:
        await until(
            predicate,
            clock=self.clock,
            step=step,
            limit=tries * step,
            pilot=self.pilot,
            on_step=self.note,
            why=lambda: f"; states seen: {self.states}",
        )

    def screen_text(self) -> str:
        return self.app.export_screenshot()

    def line(self) -> str:
        return str(dashboard(self.app).query_one(StatusLine).render())

    @property
    def state(self) -> LinkState | None:
        status = dashboard(self.app).status
        return status.state if status else None


def make_app(sim: ExchangeSimulator, clock: VirtualClock, credentials: Credentials) -> BalanceApp:
    settings = Settings(interval=2.0, request_timeout=0.3)
    return BalanceApp(settings, clock=clock, exchange_factory=factory(sim, credentials))


async def live(run: Run) -> None:
    await started(run.pilot, run.app)
    await run.until(lambda: run.state is LinkState.LIVE and dashboard(run.app).status.stream == "live")  # type: ignore[union-attr]


async def recovered(run: Run) -> None:
    await run.until(lambda: run.state is LinkState.LIVE and not table(run.app).has_class("-stale"))
    assert "Traceback" not in run.screen_text()
    assert table(run.app).row_count == len(run.sim.account.assets)


def kept_and_marked(run: Run) -> None:
    assert table(run.app).row_count == len(run.sim.account.assets), "the last good numbers are kept"
    assert table(run.app).has_class("-stale"), "and marked stale"
    assert "Traceback" not in run.screen_text()


Fault = Callable[[Run], Awaitable[None]]


async def dropped_mid_request(run: Run) -> None:
    run.sim.faults.drop_next = 1
    await run.pilot.press("r")
    await run.until(lambda: LinkState.RECONNECTING in run.states)
    assert "RECONNECTING in" in run.line() and "attempt 1" in run.line()
    kept_and_marked(run)


async def silent(run: Run) -> None:
    run.sim.faults.silent = True
    await run.pilot.press("r")
    await run.until(lambda: run.state is LinkState.RECONNECTING, step=0.1)
    assert "no reply" in run.line()
    kept_and_marked(run)
    run.sim.faults.silent = False


async def close_1001(run: Run) -> None:
    run.sim.faults.close_next = 1
    await run.pilot.press("r")
    await run.until(lambda: LinkState.RECONNECTING in run.states)
    assert "1001" in (dashboard(run.app).status.detail if run.state is LinkState.RECONNECTING else "1001")  # type: ignore[union-attr]


async def storm_429(run: Run) -> None:
    run.sim.ip.limit = run.sim.weight_count()  # everything from now on is over the limit
    await run.pilot.press("r")
    await run.until(lambda: run.state is LinkState.RATE_LIMITED, step=0.1)
    line = run.line()
    assert "RATE-LIMITED until" in line and " s)" in line
    banner = dashboard(run.app).query_one("#banner")
    assert banner.display and "nothing is sent for" in str(banner.render())
    kept_and_marked(run)
    sent = len(run.sim.requests)
    await run.clock.advance(5)
    await run.pilot.pause(0.01)
    assert len(run.sim.requests) <= sent + 1  # the stream's key ping at most; no storm
    run.sim.ip.limit = 2400
    assert run.sim.ip.bans == 0


async def banned_418(run: Run) -> None:
    run.sim.ban(180)
    await run.pilot.press("r")
    await run.until(lambda: run.state is LinkState.BANNED, step=0.1)
    assert "BANNED until" in run.line()
    kept_and_marked(run)


async def skew_ahead(run: Run) -> None:
    run.sim.faults.clock_skew_ms = 10_000
    await run.pilot.press("r")
    await run.until(lambda: "clock corrected +10.0 s" in run.line(), step=0.1)


async def skew_behind(run: Run) -> None:
    run.sim.faults.clock_skew_ms = -10_000
    await run.pilot.press("r")
    await run.until(lambda: "clock corrected -10.0 s" in run.line(), step=0.1)


async def malformed_json(run: Run) -> None:
    run.sim.faults.malformed_next = 1
    await run.pilot.press("r")
    await run.until(lambda: LinkState.ERROR in run.states, step=0.1)
    assert "not JSON" in dashboard(run.app).status.detail or run.state is LinkState.LIVE  # type: ignore[union-attr]


async def wrong_shape(run: Run) -> None:
    run.sim.faults.wrong_shape_next = 1
    await run.pilot.press("r")
    await run.until(lambda: LinkState.ERROR in run.states, step=0.1)


async def not_a_number(run: Run) -> None:
    run.sim.faults.bad_amount_next = 1
    await run.pilot.press("r")
    await run.until(lambda: LinkState.ERROR in run.states, step=0.1)
    assert "walletBalance" in dashboard(run.app).status.detail  # type: ignore[union-attr]
    kept_and_marked(run)


async def oversized_frame(run: Run) -> None:
    run.sim.faults.oversized_next = 1
    await run.pilot.press("r")
    await run.until(lambda: LinkState.ERROR in run.states, step=0.1)
    assert "larger than" in dashboard(run.app).status.detail  # type: ignore[union-attr]


async def listen_key_expiring(run: Run) -> None:
    await run.sim.expire_listen_keys()
    await run.until(lambda: "reconnecting" in run.streams or run.streams.count("live") >= 2, step=0.1)
    await run.until(lambda: dashboard(run.app).status.stream == "live")  # type: ignore[union-attr]
    assert LinkState.RECONNECTING not in run.states  # polling never noticed


async def stream_dropping(run: Run) -> None:
    run.sim.drop_streams()
    await run.until(lambda: "reconnecting" in run.streams, step=0.1)
    assert "push reconnecting" in run.line() or dashboard(run.app).status.stream == "live"  # type: ignore[union-attr]
    await run.until(lambda: dashboard(run.app).status.stream == "live")  # type: ignore[union-attr]
    assert LinkState.RECONNECTING not in run.states


FAULTS: dict[str, Fault] = {
    "dropped mid-request": dropped_mid_request,
    "server silent": silent,
    "close 1001": close_1001,
    "429 storm": storm_429,
    "418 ban": banned_418,
    "clock +10 s": skew_ahead,
    "clock -10 s": skew_behind,
    "malformed JSON": malformed_json,
    "wrong shape": wrong_shape,
    "amount not a number": not_a_number,
    "oversized frame": oversized_frame,
    "listen key expiring": listen_key_expiring,
    "stream dropping": stream_dropping,
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_the_app_survives(
    name: str, sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    app = make_app(sim, clock, hmac_credentials)
    async with app.run_test(size=(120, 36)) as pilot:
        run = Run(app, pilot, sim, clock, [], [])
        await live(run)
        run.states.clear()
        await FAULTS[name](run)
        await recovered(run)


async def test_revoked_key_stops_polling_and_says_what_to_check(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    app = make_app(sim, clock, hmac_credentials)
    async with app.run_test(size=(120, 36)) as pilot:
        run = Run(app, pilot, sim, clock, [], [])
        await live(run)
        sim.revoke_key(TEST_API_KEY)
        await pilot.press("r")
        await run.until(lambda: run.state is LinkState.CREDENTIALS_REJECTED, step=0.1)
        assert "not on the key's list" in str(dashboard(app).query_one("#banner").render())
        kept_and_marked(run)
        sent = len([m for _, m in sim.requests if m.endswith("account.status")])
        await clock.advance(600, step=10)
        await pilot.pause(0.01)
        assert len([m for _, m in sim.requests if m.endswith("account.status")]) == sent  # no retry storm
        sim.keyring.keys[TEST_API_KEY].revoked = False
        await pilot.press("r")  # the trader fixed it and asks again
        await recovered(run)


async def test_connection_refused_then_the_server_restarts_on_the_same_port(
    clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    first = ExchangeSimulator(clock=clock)
    first.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    await first.start()
    app = make_app(first, clock, hmac_credentials)
    async with app.run_test(size=(120, 36)) as pilot:
        run = Run(app, pilot, first, clock, [], [])
        await live(run)
        await first.stop()
        await run.until(lambda: run.state is LinkState.RECONNECTING and table(app).has_class("-stale"))
        await run.until(lambda: dashboard(app).status.attempt >= 3)  # type: ignore[union-attr]
        assert "cannot connect" in run.line()
        kept_and_marked(run)
        second = ExchangeSimulator(clock=clock, port=first.port)
        second.add_hmac_key(TEST_API_KEY, TEST_SECRET)
        async with second:
            run.sim = second
            await recovered(run)
            await run.until(lambda: dashboard(app).status.stream == "live")  # type: ignore[union-attr]


async def test_connection_lifetime_roll_overs_go_unnoticed(clock: VirtualClock, hmac_credentials: Credentials) -> None:
    sim = ExchangeSimulator(clock=clock, max_connection_age=300)  # a 24 h limit, shortened
    sim.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    async with sim:
        app = make_app(sim, clock, hmac_credentials)
        async with app.run_test(size=(120, 36)) as pilot:
            run = Run(app, pilot, sim, clock, [], [])
            await live(run)
            await run.until(lambda: sim.handshakes >= 4, step=2.0, tries=2000)
            assert run.state is LinkState.LIVE
            assert "Traceback" not in run.screen_text()
            assert LinkState.ERROR not in run.states
