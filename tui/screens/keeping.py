"""What the dashboard keeps beyond its screen: the local history (the tape, the margin balance's series) and its
reach (alerts to the trader's destinations, the daily summary, metrics), as the settings ask."""

from __future__ import annotations

import asyncio

from services.clock import Clock
from services.history import HistoryError
from services.reach import Reach
from services.session import Session
from services.settings import Settings
from tui.screens.view import DashboardView
from tui.wiring import Exchange, make_reach, open_history
from widgets.tape import HistoryPanel


class KeepingView(DashboardView):
    """The history and the reach of the dashboard (the screen, :class:`~tui.screens.dashboard.DashboardScreen`,
    sets what they are kept from)."""

    settings: Settings
    clock: Clock
    session: Session
    reach: Reach | None = None

    def _start_reach(self, exchange: Exchange) -> tuple[Reach, asyncio.Task[None]]:
        """Notifications, the daily summary and metrics for this exchange's account, running until cancelled."""
        reach = self.reach = make_reach(self.settings, exchange, self.session, self.clock, on_trouble=self._trouble)
        try:
            reach.start()
        except OSError as exc:  # the metrics port is taken: said, and the dashboard runs on
            self.notify(str(exc), severity="error", timeout=30)
        return reach, asyncio.create_task(reach.run(), name="reach")

    def _trouble(self, what: str | None) -> None:
        """Notifications failing (said once, here and in the log) or getting through again."""
        self.trouble = "notifications failing" if what else ""  # short: the state stays readable beside it
        if what:
            self.notify(what, severity="warning", timeout=15)

    def _open_history(self, exchange: Exchange) -> None:
        if self.session.history is not None or not self.settings.history:
            return
        try:
            self.session.history = open_history(self.settings, exchange, self.clock)
        except HistoryError as exc:
            self._history_off(f"running without history: {exc}")
            return
        self.session.load_series()

    def _series(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.session.margin_series)  # a shape to draw, not a figure to read

    def _history_off(self, why: str) -> None:
        self.notify(why, severity="warning", timeout=15)
        self.tape_note = why

    def action_tape(self) -> None:
        panel = self.query_one(HistoryPanel)
        panel.display = not panel.display
        if panel.display:
            self.series = self._series()
