"""The balance-tui App: one dashboard screen fed by a background worker, and a help screen."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.driver import Driver
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Sparkline, Static
from textual.worker import Worker, WorkerState

from services import freshness
from services.alerts import AlertEvent
from services.clock import SYSTEM_CLOCK, Clock
from services.errors import because
from services.feed import AccountFeed, BalanceChangeEvent, MarginCallEvent, SnapshotEvent
from services.formatting import format_exact
from services.history import SAMPLE_EVERY_MS, HistoryError, HistoryRecorder
from services.models import AccountSnapshot, Change, ConnectionStatus, LinkState, MarginCall
from services.settings import Settings
from tui import crash, exits, terminal
from tui.checks import checked_keymap, unknown_theme
from tui.notify import Notifier
from tui.wiring import (
    TERMINATING_SIGNALS,
    Exchange,
    alerts_from,
    make_client,
    make_feed,
    open_exchange,
    open_history,
)
from widgets.balance_table import BalanceTable, next_age_change_ms
from widgets.margin_call_banner import MarginCallBanner
from widgets.margin_pane import MarginPane, clock_time
from widgets.status_line import UPDATED_STEP, StatusLine, TotalsBar, countdown
from widgets.tape import ChangeTape, HistoryPanel
from widgets.weight_meter import WeightMeter

ExchangeFactory = Callable[[Settings], AbstractAsyncContextManager[Exchange]]

COMPACT_BELOW = 112  # columns: narrower terminals get the compact table
MAX_QUIET_MS = 60_000  # even with nothing due, look once a minute
SHUTDOWN_WAIT = 3.5  # seconds the feed gets to close the stream and stop the listen key on the way out (its stop
# waits 3 s at most), within terminal.LAST_RESORT_AFTER
SOFT_SLACK_MS = 1_000  # how late an age step may show (marks paint every second: it goes with the next snapshot)
INJECTED_CLOCK_TICK = 0.25  # seconds: with a test's clock, time jumps without a timer's knowing
QUIET_STREAM = ("silent", "reconnecting", "connecting")
FEED_RESTART = 5.0  # seconds before a feed that failed on something unexpected is started again


class SnapshotReceived(Message):
    """A new snapshot from the feed. A newer one replaces it in the queue: bursts collapse to the latest."""

    def __init__(self, snapshot: AccountSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReceived)


class ChangeReceived(Message):
    """A balance changed (pushed with its reason, or found by a poll)."""

    def __init__(self, change: Change) -> None:
        super().__init__()
        self.change = change


class MarginCallReceived(Message):
    """The exchange sent a MARGIN_CALL."""

    def __init__(self, margin_call: MarginCall) -> None:
        super().__init__()
        self.margin_call = margin_call


class StatusChanged(Message):
    """The connection's state changed."""

    def __init__(self, status: ConnectionStatus) -> None:
        super().__init__()
        self.status = status


HELP = """\
# balance-tui

Balances of your USDⓈ-M Futures account, as the exchange reports them — every amount is the exchange's exact
decimal, cut (never rounded up) to the column's precision. The margin pane shows all eight decimals.

| key | does |
|---|---|
| `r` | refresh now (and retry after rejected credentials) |
| `p` | pause / resume refreshing |
| `+` / `-` | refresh faster / slower |
| `s` / `S` | sort by the next column / reverse the order |
| `z` | hide / show zero balances |
| `d` | show / hide the margin pane |
| `a` | acknowledge a margin call (shown only while there is one) |
| `!` | the alerts: what holds now, and what fired and resolved this session |
| `t` | the tape of balance changes (and why), with a sparkline of the margin balance |
| `?` | this help |
| `q` | quit |

**States.** *LIVE*: numbers arrive on time. *STALE*: three refreshes went by without new numbers — the last good ones
stay on screen, marked. *RECONNECTING*: the connection dropped; the countdown says when the next try is.
*RATE-LIMITED* / *BANNED*: the exchange said stop (429/418); nothing is sent until the time shown.
*CREDENTIALS REJECTED*: check the key, its permissions and the IP whitelist, then press `r`.

**Weight.** Binance allows 2400 request weight a minute per IP, shared with every other program on it. The meter
shows the whole IP's count, this app's share, and what other programs used.

Press `escape` to close.
"""


class HelpScreen(ModalScreen[None]):
    """Keys and what the states mean."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        # Imported here: Markdown pulls in markdown-it, 40 ms of start-up for a screen most runs never open.
        from textual.widgets import Markdown

        with VerticalScroll(id="help"):
            yield Markdown(HELP)


#: The table column that shows each per-asset metric, for highlighting the figure an alert fired on.
ALERT_COLUMNS = {
    "available": "available",
    "wallet": "wallet",
    "upnl": "upnl",
    "max_withdraw": "max_withdraw",
    "margin_balance": "asset",
}


class AlertsScreen(ModalScreen[None]):
    """Every alert of the session: what holds now, and what fired and resolved before."""

    BINDINGS = [Binding("escape,q,exclamation_mark", "dismiss", "Close", id="alerts.close")]

    def __init__(self, log: list[AlertEvent], firing: tuple[AlertEvent, ...]) -> None:
        super().__init__()
        self.events = list(log)
        self.holding = firing

    def compose(self) -> ComposeResult:
        lines = ["Alerts holding now:"]
        lines += [f"  {clock_time(e.at_ms)}  {e.rule}  {_alert_value(e)}" for e in self.holding] or ["  none"]
        lines += ["", "This session:"]
        lines += [
            f"  {clock_time(e.at_ms)}  {e.state:<8}  {e.rule}  {_alert_value(e)}" for e in reversed(self.events[-200:])
        ] or ["  nothing yet"]
        lines += ["", "Rules: --alert RULE or alerts = [...] in the config file (README). escape closes."]
        with VerticalScroll(id="alerts"):
            yield Static("\n".join(lines))


def _alert_value(event: AlertEvent) -> str:
    value = f"value {format_exact(event.value)}" if event.value is not None else event.detail
    return value + (" (on stale data)" if event.stale else "")


class DashboardScreen(Screen[None]):
    """Balances, totals, margin, weight and the connection's state on one screen."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="refresh"),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("plus,equals_sign", "faster", "Speed", id="faster", key_display="+/-", show=False),
        Binding("minus", "slower", "Slower", id="slower", show=False),
        Binding("s", "sort", "Sort", id="sort"),
        Binding("S", "reverse", "Reverse", id="reverse", show=False),
        Binding("z", "hide_zero", "Zeros", id="hide_zero", show=False),
        Binding("d", "details", "Pane", id="details"),
        Binding("a", "acknowledge", "Acknowledge", id="acknowledge"),
        Binding("exclamation_mark", "alerts", "Alerts", id="alerts", key_display="!"),
        Binding("t", "tape", "Tape", id="tape"),
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]

    snapshot: reactive[AccountSnapshot | None] = reactive(None, repaint=False)
    status: reactive[ConnectionStatus | None] = reactive(None, repaint=False)
    now_ms: reactive[int] = reactive(0, repaint=False)  # bound down; the screen itself draws nothing from it
    margin_call: reactive[MarginCall | None] = reactive(None, bindings=True)
    firing: reactive[tuple[AlertEvent, ...]] = reactive(())  # the alerts that hold now, oldest first
    # Staleness is decided here once (_update_stale, by services.freshness) and bound down: the status line and the
    # table never disagree.
    stale: reactive[bool] = reactive(False, repaint=False)  # no new numbers for three refreshes
    behind: reactive[bool] = reactive(False, repaint=False)  # stale, or the link is down: numbers may have moved

    def __init__(self, settings: Settings, clock: Clock, exchange_factory: ExchangeFactory | None) -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.exchange_factory = exchange_factory
        self.feed: AccountFeed | None = None
        self.exchange: Exchange | None = None
        self.alerts = alerts_from(settings)
        self.history: HistoryRecorder | None = None
        self.tape: list[Change] = []
        self.margin_series: list[float] = []
        self._series_at = 0
        self._tick_timer: Timer | None = None
        self._tick_due = 0.0  # when the timer set fires (time.monotonic(), as Textual's timers)
        self._soft_due_ms = 0  # when an age on screen (or the quiet window's reset) next reads differently
        self.alert_log: list[AlertEvent] = []  # every firing and resolution of this session, for the alerts screen
        self.notifier: Notifier | None = None  # --notify: each alert on the desktop too, as watch does

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static("", id="mode")
            yield Static("balance-tui", id="title")
            yield Static("", id="endpoint")
        yield StatusLine(id="status").data_bind(
            DashboardScreen.status,
            DashboardScreen.snapshot,
            DashboardScreen.now_ms,
            DashboardScreen.firing,
            DashboardScreen.stale,
        )
        yield MarginCallBanner(id="margin-call").data_bind(DashboardScreen.margin_call)
        yield Static("", id="banner")
        yield TotalsBar(id="totals")
        yield BalanceTable(id="balances").data_bind(stale=DashboardScreen.behind)
        yield HistoryPanel(id="history")
        yield MarginPane(id="margin")
        yield WeightMeter(id="weight")
        # The palette (ctrl+p) is in the help screen; its footer entry would push Quit off an 80-column screen.
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.now_ms = self.clock.time_ms()
        if self.settings.notify:
            # Where there is no desktop, the one line watch prints on stderr is a toast here (stderr is the screen).
            self.notifier = Notifier(True, err=_Toaster(self))
        self.query_one(BalanceTable).set_compact(self.size.width < COMPACT_BELOW)
        self._schedule_tick()
        if self.exchange_factory is not None:
            self.run_feed()

    # -- the feed ---------------------------------------------------------------------------------------------

    @work(group="feed", exclusive=True, exit_on_error=False)
    async def run_feed(self) -> None:
        assert self.exchange_factory is not None
        async with (
            self.exchange_factory(self.settings) as exchange,
            make_client(self.settings, exchange, self.clock) as client,
        ):
            self.show_exchange(exchange)
            self._open_history(exchange)
            self.feed = make_feed(self.settings, exchange, client)
            events = self.feed.events()
            try:
                async for event in events:
                    if isinstance(event, BalanceChangeEvent):
                        self.post_message(ChangeReceived(event.change))
                    elif isinstance(event, SnapshotEvent):
                        self.post_message(SnapshotReceived(event.snapshot))
                    elif isinstance(event, MarginCallEvent):
                        self.post_message(MarginCallReceived(event.margin_call))
                    else:
                        self.post_message(StatusChanged(event.status))
            finally:
                # Closed here, while the client is still open: a cancelled `async for` leaves the generator to
                # the garbage collector, by which time the client is closed and the listen key cannot be stopped.
                await events.aclose()

    async def on_unmount(self) -> None:
        # Textual cancels a screen's workers as it goes but does not wait for them, and asyncio.run's clean-up
        # cancels what is left a second time, mid-way through the feed's way out (closing the stream, stopping
        # the listen key), which needs the loop running and the client open: it is waited for here, a few
        # seconds at most.
        feeds = [w for w in self.app.workers if w.node is self and w.group == "feed" and not w.is_finished]
        for worker in feeds:
            if not worker.is_cancelled:  # a second cancel would land in the feed's clean-up, and cut it short
                worker.cancel()
        with contextlib.suppress(TimeoutError):  # gather keeps each worker's own end (cancelled, failed) to itself
            await asyncio.wait_for(asyncio.gather(*(w.wait() for w in feeds), return_exceptions=True), SHUTDOWN_WAIT)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The one place a failure of the feed itself lands: shown as a state, never as a traceback.
        if event.worker.group == "feed" and event.state is WorkerState.ERROR:
            error = event.worker.error
            self.status = ConnectionStatus(
                state=LinkState.ERROR,
                endpoint=self.status.endpoint if self.status else "",
                since_ms=self.clock.time_ms(),
                retry_at_ms=self.clock.time_ms() + round(FEED_RESTART * 1000),
                detail=because("the feed stopped", error),
            )
            self.notify(because("The feed stopped", error), severity="error", timeout=30)
            # Never a dashboard frozen for good: start the feed again (a new connection, a fresh state).
            self.set_timer(FEED_RESTART, self.run_feed, name="feed restart")

    def show_exchange(self, exchange: Exchange) -> None:
        self.exchange = exchange
        mode = self.query_one("#mode", Static)
        mode.update(f" {exchange.label} ")
        for label in ("DEMO", "TESTNET", "LIVE", "CUSTOM"):
            mode.set_class(exchange.label == label, f"-{label.lower()}")
        suffix = " — simulated exchange, not real money" if exchange.label == "DEMO" else ""
        self.query_one("#endpoint", Static).update(f"{exchange.ws_url}{suffix}")

    @on(SnapshotReceived)
    def _snapshot_received(self, message: SnapshotReceived) -> None:
        self.snapshot = message.snapshot
        totals = message.snapshot.totals
        now = self.clock.time_ms()
        if totals is not None and now - self._series_at >= SAMPLE_EVERY_MS:
            # One point a minute, as the store samples: 1,440 points are the last 24 hours, whatever the marks'
            # pace (a point per snapshot would be six minutes of marks). A shape to draw, not a figure to read.
            self._series_at = now
            self.margin_series.append(float(totals.total_margin_balance))
            del self.margin_series[:-1440]
            if self.history is not None:
                self._history_write(
                    lambda h: h.snapshot(
                        totals.total_wallet_balance,
                        totals.total_unrealized_profit,
                        totals.total_margin_balance,
                        self.clock.time_ms(),
                    )
                )
            if self.query_one(HistoryPanel).display:
                self.query_one("#margin-sparkline", Sparkline).data = list(self.margin_series)

    @on(ChangeReceived)
    def _change_received(self, message: ChangeReceived) -> None:
        self.tape.append(message.change)
        del self.tape[:-200]
        self._history_write(lambda h: h.change(message.change))
        self.query_one(ChangeTape).changes = tuple(self.tape)

    # -- history ----------------------------------------------------------------------------------------------

    def _open_history(self, exchange: Exchange) -> None:
        if self.history is not None or not self.settings.history:
            return
        try:
            self.history = open_history(self.settings, exchange, self.clock)
        except HistoryError as exc:
            self._history_off(f"running without history: {exc}")
            return
        if self.history is not None:
            day_ago = self.clock.time_ms() - 86_400_000
            try:
                past = self.history.store.samples(self.history.account, since_ms=day_ago)
            except HistoryError:
                past = []
            self.margin_series[:0] = [float(v) for _, v in past]

    def _history_write(self, write: Callable[[HistoryRecorder], object]) -> None:
        if self.history is None:
            return
        try:
            write(self.history)
        except HistoryError as exc:
            self.history = None
            self._history_off(f"history stopped: {exc}")

    def _history_off(self, why: str) -> None:
        self.notify(why, severity="warning", timeout=15)
        self.query_one(ChangeTape).note = why

    def action_tape(self) -> None:
        panel = self.query_one(HistoryPanel)
        panel.display = not panel.display
        if panel.display:
            self.query_one("#margin-sparkline", Sparkline).data = list(self.margin_series)

    @on(StatusChanged)
    def _status_changed(self, message: StatusChanged) -> None:
        self.status = message.status

    @on(MarginCallReceived)
    def _margin_call_received(self, message: MarginCallReceived) -> None:
        self.margin_call = message.margin_call
        self.app.bell()
        self.notify("MARGIN CALL from the exchange — see the banner", severity="error", timeout=60)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "acknowledge":
            return self.margin_call is not None  # the key shows only while there is something to acknowledge
        return True

    def action_acknowledge(self) -> None:
        self.margin_call = None

    # -- rendering --------------------------------------------------------------------------------------------

    def watch_snapshot(self, snapshot: AccountSnapshot | None) -> None:
        with self.app.batch_update():
            self.now_ms = self.clock.time_ms()
            table = self.query_one(BalanceTable)
            table.show(snapshot, self.now_ms)
            if self.now_ms >= self._soft_due_ms:
                table.tick(self.now_ms)  # an age step due: in this frame, not a frame of its own a moment later
            totals = self.query_one(TotalsBar)
            totals.totals = snapshot.totals if snapshot else None
            totals.multi_assets = snapshot.multi_assets_margin if snapshot else None
            totals.estimated = snapshot is not None and snapshot.totals_source == "mark"
            meter = self.query_one(WeightMeter)
            meter.reading = snapshot.weight if snapshot else None
            meter.budget = snapshot.weight_budget if snapshot else None
            self._update_pane()
            self._update_stale()
            self._update_meter_clock()
        self._check_alerts()
        if self.is_mounted:
            self._schedule_tick()

    def watch_status(self, status: ConnectionStatus | None) -> None:
        self._update_banner()
        self._update_stale()
        self._check_alerts()
        if self.is_mounted:
            self._schedule_tick()

    # -- alerts -----------------------------------------------------------------------------------------------

    def _check_alerts(self) -> None:
        events = self.alerts.check(
            self.snapshot, self.status, self.clock.time_ms(), margin_call=self.margin_call is not None
        )
        if not events:
            return
        for event in events:
            self.alert_log.append(event)
            stale = " (on stale data)" if event.stale else ""
            value = f" at {format_exact(event.value)}" if event.value is not None else ""
            if self.notifier is not None:
                self.notifier.alert(event)
            if event.state == "firing":
                self.app.bell()
                self.notify(f"ALERT {event.rule}{value}{stale}", severity="error", timeout=20)
            else:
                self.notify(f"resolved: {event.rule}{value}", timeout=8)
        firing = {e.rule: e for e in self.firing}
        for event in events:
            if event.state == "firing":
                firing[event.rule] = event
            else:
                firing.pop(event.rule, None)
        self.firing = tuple(firing.values())

    def watch_firing(self, firing: tuple[AlertEvent, ...]) -> None:
        rules = {rule.text: rule for rule in self.alerts.rules}
        cells = {
            (rules[e.rule].asset or "", ALERT_COLUMNS.get(rules[e.rule].metric, "asset"))
            for e in firing
            if e.rule in rules and rules[e.rule].asset
        }
        self.query_one(BalanceTable).set_alerted(cells)
        account = any(e.rule in rules and rules[e.rule].asset is None for e in firing)
        self.query_one(TotalsBar).set_class(account, "-alert")

    def action_alerts(self) -> None:
        self.app.push_screen(AlertsScreen(self.alert_log, self.firing))

    def _schedule_tick(self) -> None:
        """One timer, set for the next moment any text on screen will change — an age crossing a step, a countdown
        second while one is shown, numbers turning stale — rather than a fixed tick every second.

        An age, or the weight window's reset passing while the IP is quiet, may show up to ``SOFT_SLACK_MS`` late:
        while marks move, the next snapshot (within a second) paints it in the same frame instead of a frame of its
        own. Turning stale, a per-second countdown and a timed alert are never late.
        """
        now = self.clock.time_ms()
        hard, soft = self.next_change_ms(now)
        self._soft_due_ms = now + soft
        delay = min(hard, soft + SOFT_SLACK_MS) / 1000
        if self.clock is not SYSTEM_CLOCK:
            delay = min(delay, INJECTED_CLOCK_TICK)  # an injected clock can jump at any time: look often
        due = time.monotonic() + max(0.05, delay)  # the timer's own clock
        if self._tick_timer is not None:
            if due >= self._tick_due - 0.001:
                return  # the timer set already comes first: it looks again then (a timer a snapshot is a task)
            self._tick_timer.stop()
        self._tick_due = due
        self._tick_timer = self.set_timer(max(0.05, delay), self._tick, name="next change")

    def next_change_ms(self, now: int) -> tuple[int, int]:
        """In ms from now: the next change that must show on time (hard), and the next that may wait (soft)."""
        hard, soft = [MAX_QUIET_MS], [MAX_QUIET_MS]
        if (table_next := self.query_one(BalanceTable).next_change_ms(now)) is not None:
            soft.append(table_next)
        meter = self.query_one(WeightMeter)
        if (meter_next := meter.next_change_ms()) is not None:
            (soft if meter.coarse else hard).append(meter_next)
        snapshot, status = self.snapshot, self.status
        if snapshot is not None:
            age = now - snapshot.received_at_ms
            soft.append(next_age_change_ms(age, UPDATED_STEP))  # "updated … ago"
            if status is not None:  # the moment the numbers turn stale
                for at in (freshness.stale_at_ms(status, snapshot), freshness.stale_alert_at_ms(status, snapshot)):
                    if at > now:
                        hard.append(at - now)
        if status is not None and (status.retry_at_ms is not None or status.stream in QUIET_STREAM):
            hard.append(1000 - now % 1000)  # a countdown is shown, or the silent-stream alert is timing
        return max(1, min(hard)), max(1, min(soft))

    def _tick(self) -> None:
        self._tick_timer = None
        self._check_alerts()  # stale and silent need no event to come true
        self._tick_body()
        self._schedule_tick()

    def _tick_body(self) -> None:
        with self.app.batch_update():
            self.now_ms = self.clock.time_ms()
            self.query_one(BalanceTable).tick(self.now_ms)
            self._update_banner()
            self._update_stale()
            self._update_meter_clock()

    def _update_meter_clock(self) -> None:
        offset = self.snapshot.clock_offset_ms if self.snapshot else 0
        self.query_one(WeightMeter).server_now_ms = self.now_ms + offset

    def _update_stale(self) -> None:
        self.stale = freshness.is_stale(self.status, self.snapshot, self.now_ms)
        self.behind = freshness.is_behind(self.status, self.snapshot, self.now_ms)

    def _update_banner(self) -> None:
        banner = self.query_one("#banner", Static)
        status = self.status
        if status is None or status.state not in (
            LinkState.RATE_LIMITED,
            LinkState.BANNED,
            LinkState.CREDENTIALS_REJECTED,
        ):
            banner.display = False
            return
        if status.state is LinkState.CREDENTIALS_REJECTED:
            text = f"CREDENTIALS REJECTED — polling stopped.\n{status.detail}\nFix the key, then press r."
        else:
            what = "IP BANNED by the exchange (418)" if status.state is LinkState.BANNED else "RATE-LIMITED (429)"
            left = countdown(status.retry_at_ms, self.now_ms)
            text = f"{what} — nothing is sent for {left}.\n{status.detail}"
        banner.update(text)
        banner.display = True

    def _update_pane(self) -> None:
        pane = self.query_one(MarginPane)
        table = self.query_one(BalanceTable)
        snapshot = self.snapshot
        asset = table.selected_asset
        pane.row = snapshot.balances.get(asset) if snapshot is not None and asset else None
        pane.multi_assets = snapshot.multi_assets_margin if snapshot else None
        pane.totals = snapshot.totals if snapshot else None
        pane.estimated = snapshot is not None and snapshot.totals_source == "mark"
        pane.positions = tuple(p for p in snapshot.positions if p.margin_asset == asset) if snapshot else ()

    @on(DataTable.RowHighlighted, "#balances")
    def _row_highlighted(self) -> None:
        self._update_pane()

    @on(DataTable.HeaderSelected, "#balances")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        table = self.query_one(BalanceTable)
        key = str(event.column_key.value)
        if key == table.sort_key:
            table.sort_by(key, reverse=not table.sort_reverse)
        else:
            table.sort_by(key)

    def on_resize(self) -> None:
        self.query_one(BalanceTable).set_compact(self.size.width < COMPACT_BELOW)

    # -- actions ----------------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if self.feed is not None:
            self.feed.refresh_now()
            self.notify("Refreshing…", timeout=1.5)

    def action_pause(self) -> None:
        if self.feed is None:
            return
        if self.feed.paused:
            self.feed.resume()
        else:
            self.feed.pause()

    def action_faster(self) -> None:
        self._set_interval(0.5)

    def action_slower(self) -> None:
        self._set_interval(2.0)

    def _set_interval(self, factor: float) -> None:
        if self.feed is None:
            return
        interval = self.feed.set_interval(self.feed.interval * factor)
        effective = self.feed.effective_interval()
        # The same figure the status line shows: with the stream live, polls are a slow reconcile.
        message = f"Refreshing every {effective:g} s"
        if effective != interval:
            message += f" (every {interval:g} s whenever the push stream is not live)"
        self.notify(message, timeout=3)

    def action_sort(self) -> None:
        table = self.query_one(BalanceTable)
        table.sort_by(table.next_sort_key())

    def action_reverse(self) -> None:
        table = self.query_one(BalanceTable)
        table.sort_by(table.sort_key, reverse=not table.sort_reverse)

    def action_hide_zero(self) -> None:
        table = self.query_one(BalanceTable)
        table.set_hide_zero(not table.hide_zero)
        self._update_pane()

    def action_details(self) -> None:
        pane = self.query_one(MarginPane)
        pane.display = not pane.display

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def resync(self) -> None:
        """After a suspend the loop stood still: fetch now rather than trust what is on screen."""
        if self.feed is not None:
            self.feed.refresh_now()


class _Toaster:
    """A file-like sink whose lines become warning toasts."""

    def __init__(self, screen: Screen[object]) -> None:
        self.screen = screen

    def write(self, text: str) -> int:
        if text.strip():
            self.screen.notify(text.strip(), severity="warning", timeout=15)
        return len(text)

    def flush(self) -> None:
        pass


class BalanceApp(App[int]):
    """The dashboard. ``exchange_factory=None`` starts no feed: tests then post snapshots and states themselves."""

    CSS_PATH = "balance_tui.tcss"
    TITLE = "balance-tui"
    # ctrl+c ends the dashboard as a Unix program ends on it (Textual's default only says to press q): 130, as
    # kill -INT does, and as the README and --help say.
    BINDINGS = [Binding("ctrl+c", "interrupt", "Quit", show=False, system=True, priority=True, id="interrupt")]

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        exchange_factory: ExchangeFactory | None = None,
        handle_signals: bool = False,
        driver_class: type[Driver] | None = None,
    ) -> None:
        super().__init__(driver_class=driver_class)
        self.handle_signals = handle_signals
        self.crash_line: str | None = None  # set when the app ended on an unexpected error: what to tell stderr
        self.settings = settings
        self.clock = clock
        self.exchange_factory = exchange_factory
        if settings.theme and unknown_theme(settings.theme) is None:
            self.theme = settings.theme
        #: What the app told the user in toasts this session, newest last: toasts vanish, this keeps their text (and
        #: is how a test asks what was said).
        self.said: deque[tuple[SeverityLevel, str]] = deque(maxlen=200)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        self.said.append((severity, message))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_mount(self) -> None:
        if self.handle_signals:
            # A closed terminal or a kill: leave as q does (terminal restored, listen key stopped), 128 + signal.
            loop = asyncio.get_running_loop()
            for signum in (*TERMINATING_SIGNALS, signal.SIGINT):
                loop.add_signal_handler(signum, lambda code=128 + signum: self.exit(return_code=code))
            # And if the orderly way out is stuck (a vanished terminal), the process ends anyway (tui/terminal.py).
            terminal.install_last_resort(TERMINATING_SIGNALS)
        warnings = list(self.settings.warnings)
        if self.settings.keymap:
            keymap, problems = checked_keymap(self.settings.keymap, [DashboardScreen.BINDINGS, HelpScreen.BINDINGS])
            warnings.extend(problems)
            self.set_keymap(keymap)
        self.app_resume_signal.subscribe(self, self._resumed)
        self.push_screen(DashboardScreen(self.settings, self.clock, self.exchange_factory))
        for warning in warnings:
            self.notify(warning, severity="warning", timeout=15)

    def _handle_exception(self, error: Exception) -> None:
        # Textual's own handling renders a traceback with every frame's local variables (a signer, the settings, a
        # raw reply): replaced by one line and a report without locals (tui/crash.py). Under run_test the error is
        # kept where Textual keeps it, so that a test still sees it raised.
        self._return_code = exits.CRASH
        if self._exception is None:
            self._exception = error
            self._exception_event.set()
        if self.crash_line is None:
            self.crash_line = crash.one_line(
                error, log_file=self.settings.log_file, data_dir=self.settings.history_dir()
            )
        self._close_messages_no_wait()

    def action_interrupt(self) -> None:
        self.exit(return_code=exits.INTERRUPTED)

    def _resumed(self, _app: App[int]) -> None:
        # Back from ctrl+z / SIGTSTP (the signal carries the app): the loop stood still, whatever screen is on top.
        self.dashboard.resync()

    @property
    def dashboard(self) -> DashboardScreen:
        return next(s for s in self.screen_stack if isinstance(s, DashboardScreen))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        dashboard = self.dashboard
        for title, help_text, action in (
            ("Refresh now", "Fetch balances now (and retry after rejected credentials)", dashboard.action_refresh),
            ("Pause or resume", "Stop or restart refreshing", dashboard.action_pause),
            ("Refresh faster", "Halve the refresh interval", dashboard.action_faster),
            ("Refresh slower", "Double the refresh interval", dashboard.action_slower),
            ("Sort by next column", "Cycle the sort column", dashboard.action_sort),
            ("Reverse sort order", "Flip the sort order", dashboard.action_reverse),
            ("Hide or show zero balances", "Toggle assets with nothing in them", dashboard.action_hide_zero),
            ("Show or hide the margin pane", "Toggle the detail pane", dashboard.action_details),
            ("Show or hide the tape", "Balance changes and why; the margin balance's sparkline", dashboard.action_tape),
            ("Show the alerts", "What holds now, and what fired and resolved", dashboard.action_alerts),
            ("Help", "Keys and what the states mean", dashboard.action_help),
        ):
            yield SystemCommand(title, help_text, action)
        if dashboard.margin_call is not None:  # offered only when there is one, as the key is
            yield SystemCommand("Acknowledge margin call", "Clear the margin-call banner", dashboard.action_acknowledge)


@contextlib.asynccontextmanager
async def _quiet_exchange(settings: Settings) -> AsyncIterator[Exchange]:
    # In the dashboard the header says DEMO; nothing may be printed under Textual's screen.
    async with open_exchange(settings, announce=None) as exchange:
        yield exchange


def run_dashboard(settings: Settings) -> int:
    app = BalanceApp(
        settings, exchange_factory=_quiet_exchange, handle_signals=True, driver_class=terminal.driver_class()
    )
    app.run()
    if app.crash_line is not None:  # said once the terminal is restored, below the shell's prompt
        print(app.crash_line, file=sys.stderr)
        return exits.CRASH
    return app.return_code or 0
