"""The balance-tui App: the dashboard screen (tui/screens/) and how the process runs it and leaves."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.notifications import SeverityLevel
from textual.screen import Screen

from services.clock import SYSTEM_CLOCK, Clock
from services.settings import Settings
from tui import crash, exits, terminal
from tui.checks import checked_keymap, unknown_theme
from tui.screens.dashboard import DashboardScreen
from tui.screens.help import HelpScreen
from tui.wiring import TERMINATING_SIGNALS, Exchange, ExchangeFactory, open_exchange


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
                loop.add_signal_handler(signum, self.exit, None, 128 + signum)  # result None, return code
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
