"""The dashboard: balances, totals, margin, weight and the connection's state on one screen, fed by a worker."""

from __future__ import annotations

import asyncio
import contextlib

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer
from textual.worker import Worker, WorkerState

from services.alerts import AlertEvent
from services.clock import Clock
from services.errors import because
from services.events import FeedEvent
from services.feed import AccountFeed
from services.models import AccountSnapshot, ConnectionStatus, LinkState
from services.session import Session
from services.settings import Settings
from tui.messages import (
    AlertsRaised,
    ChangeReceived,
    KeyAudited,
    MarginCallReceived,
    SnapshotReceived,
    StatusChanged,
    TradeReceived,
    message_for,
)
from tui.notify import Notifier, Toaster, say
from tui.screens import controls, ticks
from tui.screens.alerts import AlertsScreen, alerted
from tui.screens.help import HelpScreen
from tui.screens.keeping import KeepingView
from tui.wiring import Exchange, ExchangeFactory, alerts_from, make_client, make_feed
from widgets.balance_table import BalanceTable
from widgets.key_banner import KeyBanner
from widgets.margin_call_banner import MarginCallBanner
from widgets.margin_pane import MarginPane
from widgets.masthead import Masthead
from widgets.positions_table import PositionsTable
from widgets.risk_line import RiskLine
from widgets.status_line import StatusLine, TotalsBar
from widgets.stop_banner import StopBanner
from widgets.tape import HistoryPanel
from widgets.weight_meter import WeightMeter

COMPACT_BELOW = 112  # columns: narrower terminals get the compact table
SHUTDOWN_WAIT = 3.5  # seconds the feed gets to close the stream and stop the listen key on the way out (its stop
# waits 3 s at most), within terminal.LAST_RESORT_AFTER
FEED_RESTART = 5.0  # seconds before a feed that failed on something unexpected is started again


class DashboardScreen(KeepingView):
    """Balances, totals, margin, weight and the connection's state on one screen. What it shows is declared in
    :class:`~tui.screens.view.DashboardView`; this is what it does: run the feed, derive, bind, answer the keys."""

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
        Binding("o", "positions", "Positions", id="positions"),
        Binding("h", "private", "Private", id="private", show=False),
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]

    def __init__(self, settings: Settings, clock: Clock, exchange_factory: ExchangeFactory | None) -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.exchange_factory = exchange_factory
        self.feed: AccountFeed | None = None
        self.exchange: Exchange | None = None
        #: What this screen keeps of the account over time (alerts, tape, series, history), as watch keeps it.
        self.session = Session(alerts_from(settings), clock, on_history_off=self._history_off)
        self._next_look = ticks.NextLook(self, clock, self._tick)
        self.notifier: Notifier | None = None  # --notify: each alert on the desktop too, as watch does

    def compose(self) -> ComposeResult:
        yield Masthead(id="top").data_bind(
            DashboardScreen.private,
            label=DashboardScreen.exchange_label,
            url=DashboardScreen.exchange_url,
            key=DashboardScreen.key_audit,
        )
        yield StatusLine(id="status").data_bind(
            DashboardScreen.status,
            DashboardScreen.snapshot,
            DashboardScreen.now_ms,
            DashboardScreen.firing,
            DashboardScreen.stale,
            DashboardScreen.trouble,
        )
        yield MarginCallBanner(id="margin-call").data_bind(DashboardScreen.margin_call, DashboardScreen.private)
        yield StopBanner(id="banner").data_bind(DashboardScreen.status, DashboardScreen.now_ms)
        yield KeyBanner(id="key-warning").data_bind(audit=DashboardScreen.key_audit)
        yield TotalsBar(id="totals").data_bind(
            DashboardScreen.totals,
            DashboardScreen.multi_assets,
            DashboardScreen.estimated,
            DashboardScreen.private,
            alerted=DashboardScreen.totals_alerted,
        )
        yield RiskLine(id="risk").data_bind(
            DashboardScreen.positions,
            DashboardScreen.today,
            DashboardScreen.private,
            alerted=DashboardScreen.risk_alerted,
        )
        yield PositionsTable(id="positions").data_bind(
            DashboardScreen.positions, DashboardScreen.compact, DashboardScreen.private
        )
        yield BalanceTable(id="balances").data_bind(
            DashboardScreen.balances,
            DashboardScreen.now_ms,
            DashboardScreen.ages_at,
            DashboardScreen.compact,
            DashboardScreen.private,
            stale=DashboardScreen.behind,
            alerted=DashboardScreen.alerted_cells,
        )
        yield HistoryPanel(id="history").data_bind(
            DashboardScreen.series,
            DashboardScreen.private,
            changes=DashboardScreen.tape,
            note=DashboardScreen.tape_note,
        )
        yield MarginPane(id="margin").data_bind(
            DashboardScreen.totals,
            DashboardScreen.multi_assets,
            DashboardScreen.estimated,
            DashboardScreen.private,
            row=DashboardScreen.selected_row,
            positions=DashboardScreen.selected_positions,
        )
        yield WeightMeter(id="weight").data_bind(
            DashboardScreen.server_now_ms, reading=DashboardScreen.weight, budget=DashboardScreen.weight_budget
        )
        # The palette (ctrl+p) is in the help screen; its footer entry would push Quit off an 80-column screen. On a
        # narrow terminal the footer is compact too: at 80 columns its padding cut "q Quit" off the edge.
        yield Footer(show_command_palette=False).data_bind(compact=DashboardScreen.compact)

    def on_mount(self) -> None:
        self.private = self.settings.private
        self.now_ms = self.clock.time_ms()
        if self.settings.notify:
            # Where there is no desktop, the one line watch prints on stderr is a toast here (stderr is the screen).
            self.notifier = Notifier(True, err=Toaster(self))
        self.compact = self.size.width < COMPACT_BELOW
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
            reach, reaching = self._start_reach(exchange)
            events = self.feed.events()
            try:
                async for event in events:
                    self.take(event)
            finally:
                # Closed here, while the client is still open: a cancelled `async for` leaves the generator to
                # the garbage collector, by which time the client is closed and the listen key cannot be stopped.
                await events.aclose()
                reaching.cancel()
                await reach.close()

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

    def take(self, event: FeedEvent) -> None:
        """One of the feed's events: into the session (the history is written here, in the worker, not in a
        message handler), then to the screen as a message. The worker's one hook, and a test's."""
        raised = self.session.apply(event)
        self.post_message(message_for(event))
        if raised:
            self.post_message(AlertsRaised(raised))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The one place a failure of the feed itself lands: shown as a state, never as a traceback.
        if event.worker.group == "feed" and event.state is WorkerState.ERROR:
            error = event.worker.error
            status = ConnectionStatus(
                state=LinkState.ERROR,
                endpoint=self.status.endpoint if self.status else "",
                since_ms=self.clock.time_ms(),
                retry_at_ms=self.clock.time_ms() + round(FEED_RESTART * 1000),
                detail=because("the feed stopped", error),
            )
            self.status = status
            self._raised(self.session.set_status(status))
            self.notify(because("The feed stopped", error), severity="error", timeout=30)
            # Never a dashboard frozen for good: start the feed again (a new connection, a fresh state).
            self.set_timer(FEED_RESTART, self.run_feed, name="feed restart")

    def show_exchange(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.exchange_url = exchange.ws_url
        self.exchange_label = exchange.label

    @on(SnapshotReceived)
    def _snapshot_received(self, message: SnapshotReceived) -> None:
        self.snapshot = message.snapshot
        if self.query_one(HistoryPanel).display:
            self.series = self._series()

    @on(ChangeReceived)
    def _change_received(self) -> None:
        self.tape = tuple(self.session.tape)
        self.today = self.session.today_at()

    @on(TradeReceived)
    def _trade_received(self) -> None:
        self.today = self.session.today_at()

    @on(KeyAudited)
    def _key_audited(self, message: KeyAudited) -> None:
        warned = self.key_audit is not None and bool(self.key_audit.warnings())
        self.key_audit = message.audit
        if message.audit.warnings() and not warned:
            self.notify("This API key " + ", ".join(message.audit.warnings()) + ": use a read-only, IP-restricted key",
                        severity="error", timeout=30)  # fmt: skip

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
        if action in ("sort", "reverse", "hide_zero"):
            return not self.showing_positions  # the balance table's commands: away while the positions stand there
        return True

    def action_acknowledge(self) -> None:
        self.margin_call = None
        self._raised(self.session.acknowledge())

    # -- rendering --------------------------------------------------------------------------------------------

    def watch_snapshot(self, snapshot: AccountSnapshot | None) -> None:
        with self.app.batch_update():
            self.now_ms = self.clock.time_ms()
            self.derive(snapshot)
            if self.now_ms >= self._next_look.soft_due_ms:
                self.ages_at = self.now_ms  # an age step due: in this frame, not a frame of its own a moment later
            self.today = self.session.today_at()
        if self.is_mounted:
            self._schedule_tick()

    def watch_status(self, status: ConnectionStatus | None) -> None:
        self._update_stale()
        if self.is_mounted:
            self._schedule_tick()

    # -- alerts -----------------------------------------------------------------------------------------------

    @on(AlertsRaised)
    def _alerts_raised(self, message: AlertsRaised) -> None:
        self._raised(message.events)

    def _raised(self, events: list[AlertEvent]) -> None:
        """Say each alert that fired or resolved (a toast, the bell, the desktop with --notify)."""
        for event in events:
            say(self, event, self.notifier, private=self.private)
        if self.reach is not None:
            self.reach.alerts(events)  # to the trader's destinations, queued: never waited for
        self.firing = self.session.firing

    def watch_firing(self, firing: tuple[AlertEvent, ...]) -> None:
        cells, account, risk = alerted(firing, self.session.alerts.rules)
        self.alerted_cells = frozenset(cells)
        self.totals_alerted = account
        self.risk_alerted = risk

    def action_alerts(self) -> None:
        self.app.push_screen(AlertsScreen(self.session.alert_log, self.firing, private=self.private))

    def _schedule_tick(self) -> None:
        now = self.clock.time_ms()
        self._next_look.plan(now, *self.next_change_ms(now))

    def next_change_ms(self, now: int) -> tuple[int, int]:
        """In ms from now: the next change that must show on time (hard), and the next that may wait (soft)."""
        soft: list[int] = []
        hard: list[int] = []
        if (table_next := self.query_one(BalanceTable).next_change_ms(now)) is not None:
            soft.append(table_next)
        meter = self.query_one(WeightMeter)
        if (meter_next := meter.next_change_ms()) is not None:
            (soft if meter.coarse else hard).append(meter_next)
        return ticks.next_change_ms(now, self.snapshot, self.status, soft=soft, hard=hard)

    def _tick(self) -> None:
        self._raised(self.session.check())  # stale and silent need no event to come true
        with self.app.batch_update():
            self.now_ms = self.clock.time_ms()
            self.ages_at = self.now_ms
            self._update_stale()
            self._update_meter_clock()
            self.today = self.session.today_at()  # a new UTC day starts at 00:00 with no event to say so
        self._schedule_tick()

    @on(DataTable.RowHighlighted, "#balances")
    def _row_highlighted(self) -> None:
        self._update_selected()

    @on(DataTable.HeaderSelected, "#balances")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        table = self.query_one(BalanceTable)
        key = str(event.column_key.value)
        if key == table.sort_key:
            table.sort_by(key, reverse=not table.sort_reverse)
        else:
            table.sort_by(key)

    def on_resize(self) -> None:
        self.compact = self.size.width < COMPACT_BELOW

    # -- actions ----------------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if said := controls.refresh(self.feed):
            self.notify(said, timeout=1.5)

    def action_pause(self) -> None:
        controls.pause_or_resume(self.feed)

    def action_faster(self) -> None:
        if said := controls.scale_interval(self.feed, 0.5):
            self.notify(said, timeout=3)

    def action_slower(self) -> None:
        if said := controls.scale_interval(self.feed, 2.0):
            self.notify(said, timeout=3)

    def action_sort(self) -> None:
        table = self.query_one(BalanceTable)
        table.sort_by(table.next_sort_key())

    def action_reverse(self) -> None:
        table = self.query_one(BalanceTable)
        table.sort_by(table.sort_key, reverse=not table.sort_reverse)

    def action_hide_zero(self) -> None:
        table = self.query_one(BalanceTable)
        table.set_hide_zero(not table.hide_zero)
        self._update_selected()

    def action_positions(self) -> None:
        self.showing_positions = not self.showing_positions

    def watch_showing_positions(self, showing: bool) -> None:
        """The positions view takes the balance table's place (the state, totals and weight stay in view)."""
        positions, balances = self.query_one(PositionsTable), self.query_one(BalanceTable)
        positions.display, balances.display = showing, not showing
        if showing:
            positions.draw()
        (positions if showing else balances).focus()

    def action_private(self) -> None:
        self.private = not self.private
        if self.private:
            # A toast said before may hold an amount (an alert's figure): gone with the rest, not left on a shared
            # screen for its last seconds.
            self.app.clear_notifications()
        self.notify("Privacy mode: amounts hidden (h shows them)" if self.private else "Amounts shown (h hides them)",
                    timeout=3)  # fmt: skip

    def action_details(self) -> None:
        pane = self.query_one(MarginPane)
        pane.display = not pane.display

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def resync(self) -> None:
        """After a suspend the loop stood still: fetch now rather than trust what is on screen."""
        if self.feed is not None:
            self.feed.refresh_now()
