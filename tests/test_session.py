"""The session: what the dashboard and watch both keep of an account over time (services/session.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from services.alerts import Alerts, parse_rule
from services.clock import VirtualClock
from services.events import BalanceChangeEvent, MarginCallEvent, SnapshotEvent, StatusEvent
from services.history import HistoryError, HistoryRecorder, HistoryStore
from services.models import Change, MarginCall
from services.session import MARGIN_CALL_HOLD_MS, SAMPLE_EVERY_MS, Session
from tests.test_alerts import LIVE, T0, snapshot


def session(*rules: str, history: HistoryRecorder | None = None, said: list[str] | None = None) -> Session:
    clock = VirtualClock(start_ms=T0)
    alerts = Alerts([parse_rule(r) for r in rules], builtins={"margin_call"})
    return Session(alerts, clock, history, on_history_off=(said.append if said is not None else None))


def margin_call() -> MarginCall:
    return MarginCall.model_validate({"e": "MARGIN_CALL", "E": T0, "cw": "3.16", "p": []})


def change(delta: str) -> Change:
    return Change(T0, "USDT", None, Decimal("1000"), Decimal(delta), "FUNDING_FEE", "BTCUSDT", "push")


def test_an_event_raises_the_alerts_it_makes_true_and_the_session_knows_what_holds() -> None:
    s = session("available:USDT<500")
    assert s.apply(StatusEvent(LIVE)) == []
    [fired] = s.apply(SnapshotEvent(snapshot("400")))
    assert (fired.rule, fired.state, fired.value) == ("available:USDT<500", "firing", Decimal(400))
    assert s.firing == (fired,)
    [resolved] = s.apply(SnapshotEvent(snapshot("600")))
    assert resolved.state == "resolved"
    assert not s.firing
    assert list(s.alert_log) == [fired, resolved]


async def test_a_margin_call_holds_five_minutes_after_the_last_or_until_acknowledged() -> None:
    s = session()
    s.apply(StatusEvent(LIVE))
    [fired] = s.apply(MarginCallEvent(margin_call()))
    assert fired.rule == "margin_call" and fired.state == "firing"
    clock = s.clock
    assert isinstance(clock, VirtualClock)
    await clock.advance(MARGIN_CALL_HOLD_MS / 1000 - 1)
    assert s.check() == []
    await clock.advance(1)
    [resolved] = s.check()
    assert resolved.state == "resolved"
    assert s.margin_call is not None, "the call itself stays until the trader acknowledges it (the banner)"
    await clock.advance(60)  # past the rule's rest (hysteresis): the next call fires again
    [again] = s.apply(MarginCallEvent(margin_call()))
    assert again.state == "firing"
    [resolved] = s.acknowledge()
    assert resolved.state == "resolved" and s.margin_call is None


async def test_the_series_and_the_history_sample_once_a_minute_and_the_tape_keeps_each_change(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    s = session(history=HistoryRecorder(store, "demo"))
    clock = s.clock
    assert isinstance(clock, VirtualClock)
    for _ in range(5):  # marks every second: one point, not five
        s.apply(SnapshotEvent(snapshot("600")))
        await clock.advance(1)
    await clock.advance(SAMPLE_EVERY_MS / 1000)
    s.apply(SnapshotEvent(snapshot("600")))
    assert list(s.margin_series) == [Decimal(1000), Decimal(1000)]
    assert [at for at, _ in store.samples("demo")] == [T0, T0 + 5_000 + SAMPLE_EVERY_MS]
    s.apply(BalanceChangeEvent(change("-3.14")))
    assert [c.delta for c in s.tape] == [Decimal("-3.14")]
    assert [c.delta for c in store.changes("demo")] == [Decimal("-3.14")]
    again = session(history=HistoryRecorder(store, "demo"))
    again.load_series()
    assert list(again.margin_series) == [Decimal(1000), Decimal(1000)], "the sparkline's past comes from the store"


def test_a_history_that_fails_is_said_once_and_the_session_runs_on() -> None:
    class Full(HistoryRecorder):
        def change(self, change: Change) -> None:
            raise HistoryError("disk full")

    said: list[str] = []
    s = session(history=Full.__new__(Full), said=said)
    s.apply(BalanceChangeEvent(change("-1")))
    s.apply(BalanceChangeEvent(change("-2")))
    assert said == ["history stopped: disk full"]
    assert s.history is None and len(s.tape) == 2


def test_the_first_numbers_are_not_called_stale_while_the_first_connection_is_being_said_live() -> None:
    """The first poll's snapshot comes before the link is said LIVE: an alert on it said "(on stale data)"."""
    from services.models import ConnectionStatus, LinkState

    s = session("available:USDT<500")
    s.apply(StatusEvent(ConnectionStatus(state=LinkState.CONNECTING, endpoint="x", since_ms=T0)))
    [fired] = s.apply(SnapshotEvent(snapshot("400")))
    assert fired.state == "firing" and not fired.stale
