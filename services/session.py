"""What a consumer keeps of an account over time: one session for the dashboard, ``watch`` and, later, ``serve``.

The feed says what the account is now (:mod:`services.feed`, the account core behind it); a session is what one
consumer makes of that as it goes: the latest snapshot and link state, the alerts (checked on every event and as time
passes), the tape of balance changes, the margin balance's series of one point a minute, the local history written as
the events come (each change; the totals once a minute, the same minute as the series), and the margin call the
exchange sent. It shows nothing and prints nothing: what :meth:`Session.apply` and :meth:`Session.check` return is
what the caller shows, as toasts or as JSON lines. One account, one session; a desk holds one per account.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal

from services.alerts import AlertEvent, Alerts
from services.clock import Clock
from services.events import (
    BalanceChangeEvent,
    FeedEvent,
    KeyAuditEvent,
    MarginCallEvent,
    SnapshotEvent,
    StatusEvent,
    TradeEvent,
)
from services.history import HistoryError, HistoryRecorder
from services.keyaudit import KeyAudit
from services.models import AccountSnapshot, Change, ConnectionStatus, MarginCall
from services.today import Today, TodayView

SAMPLE_EVERY_MS = 60_000  # the series and the history's samples: one point a minute, whatever the marks' pace
SERIES_POINTS = 1_440  # the last 24 hours of the margin balance
TAPE_LENGTH = 200  # balance changes kept on the tape
ALERT_LOG_LENGTH = 1_000  # firings and resolutions kept for the alerts screen
#: The built-in ``margin_call`` alert holds this long after the exchange last sent one (it sends them while the danger
#: lasts), or until the trader acknowledges it. The call itself stays (the dashboard's banner) until acknowledged.
MARGIN_CALL_HOLD_MS = 5 * 60_000


class Session:
    """One consumer's view of one account. ``history`` is written as events come; a write that fails (a full disk)
    is said once through ``on_history_off`` and the session runs on without it."""

    def __init__(
        self,
        alerts: Alerts,
        clock: Clock,
        history: HistoryRecorder | None = None,
        *,
        on_history_off: Callable[[str], None] | None = None,
    ) -> None:
        self.alerts = alerts
        self.clock = clock
        self.history = history
        self.on_history_off = on_history_off
        self.snapshot: AccountSnapshot | None = None
        self.status: ConnectionStatus | None = None
        self.margin_call: MarginCall | None = None  # the last one the exchange sent, until acknowledged
        self.margin_call_at_ms: int | None = None
        self.tape: deque[Change] = deque(maxlen=TAPE_LENGTH)
        self.margin_series: deque[Decimal] = deque(maxlen=SERIES_POINTS)  # the sparkline's points
        self.alert_log: deque[AlertEvent] = deque(maxlen=ALERT_LOG_LENGTH)
        self.firing: tuple[AlertEvent, ...] = ()  # what holds now, oldest first
        self.today = Today()  # the UTC day's wallet change by reason, counted from the first snapshot
        self.key_audit: KeyAudit | None = None  # what the key may do, as last checked
        self._sampled_at_ms: int | None = None

    def load_series(self) -> None:
        """Start the series with the history's last day, where there is one (the sparkline's past)."""
        if self.history is None:
            return
        try:
            past = self.history.store.samples(self.history.account, since_ms=self.clock.time_ms() - 86_400_000)
        except HistoryError:
            return
        self.margin_series.extendleft(value for _, value in reversed(past))

    def apply(self, event: FeedEvent) -> list[AlertEvent]:
        """Take one of the feed's events; returns the alerts that fired or resolved because of it."""
        now = self.clock.time_ms()
        if isinstance(event, BalanceChangeEvent):
            self.tape.append(event.change)
            self.today.change(event.change)
            self._write(lambda h: h.change(event.change))
            return []  # a change comes with the snapshot that holds it: the alerts look then
        if isinstance(event, KeyAuditEvent):
            self.key_audit = event.audit
            return []
        if isinstance(event, TradeEvent):
            self.today.trade(event.trade)
            self._write(lambda h: h.trade(event.trade))
            return self.check(now)
        if isinstance(event, SnapshotEvent):
            self.snapshot = event.snapshot
            self.today.start(event.snapshot.server_time_ms)
            self._sample(event.snapshot, now)
        elif isinstance(event, MarginCallEvent):
            self.margin_call, self.margin_call_at_ms = event.margin_call, now
        elif isinstance(event, StatusEvent):
            self.status = event.status
        return self.check(now)

    def set_status(self, status: ConnectionStatus) -> list[AlertEvent]:
        """A state the consumer decided itself (the dashboard's feed failing and being started again)."""
        self.status = status
        return self.check()

    def check(self, now_ms: int | None = None) -> list[AlertEvent]:
        """Look again as time passes: stale numbers and a silent stream need no event to come true."""
        now = self.clock.time_ms() if now_ms is None else now_ms
        events = self.alerts.check(
            self.snapshot, self.status, now, margin_call=self.margin_call_holds(now), today=self.today_at(now)
        )
        if events:
            self.alert_log.extend(events)
            firing = {e.rule: e for e in self.firing}
            for event in events:
                if event.state == "firing":
                    firing[event.rule] = event
                else:
                    firing.pop(event.rule, None)
            self.firing = tuple(firing.values())
        return events

    def today_at(self, now_ms: int | None = None) -> TodayView:
        """Today's figures now: the day is the exchange's (this machine's clock corrected by the offset measured)."""
        now = self.clock.time_ms() if now_ms is None else now_ms
        return self.today.at(now + (self.snapshot.clock_offset_ms if self.snapshot else 0))

    def margin_call_holds(self, now_ms: int) -> bool:
        return self.margin_call_at_ms is not None and now_ms - self.margin_call_at_ms < MARGIN_CALL_HOLD_MS

    def acknowledge(self) -> list[AlertEvent]:
        """The trader saw the margin call: the banner goes, and the alert resolves."""
        self.margin_call = self.margin_call_at_ms = None
        return self.check()

    def _sample(self, snapshot: AccountSnapshot, now_ms: int) -> None:
        totals = snapshot.totals
        if totals is None or (self._sampled_at_ms is not None and now_ms - self._sampled_at_ms < SAMPLE_EVERY_MS):
            return
        self._sampled_at_ms = now_ms
        self.margin_series.append(totals.total_margin_balance)
        self._write(lambda h: h.sample(totals, now_ms))

    def _write(self, write: Callable[[HistoryRecorder], object]) -> None:
        if self.history is None:
            return
        try:
            write(self.history)
        except HistoryError as exc:
            self.history = None
            if self.on_history_off is not None:
                self.on_history_off(f"history stopped: {exc}")
