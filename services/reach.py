"""A consumer's reach beyond its own screen or lines: each alert to the trader's destinations, the daily summary, and
Prometheus metrics — for the dashboard, ``watch`` and ``serve`` alike, over the one session each of them keeps.

Nothing here runs unless asked for (no URL, no ``--metrics``, no ``daily_summary``: no import, no thread, no task).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from services.alerts import AlertEvent
from services.clock import Clock
from services.delivery import Deliveries, Message, apprise_sender
from services.history import HistoryError
from services.metrics import MetricsServer, SessionCollector
from services.models import Change
from services.session import Session
from services.summary import DailySchedule, alert_message, day_text, now_text, yesterday_start
from services.today import DAY_MS, TodayView, day_from_history, day_of

log = logging.getLogger("balance_tui.reach")

SUMMARY_CHECK_EVERY = 1.0  # seconds between looks at the daily summary's time
DRAIN_ON_EXIT = 2.0  # seconds queued messages get on the way out


class Reach:
    """Built from what the settings ask for; :meth:`run` until cancelled, :meth:`close` on the way out."""

    def __init__(
        self,
        session: Session,
        *,
        account: str,
        clock: Clock,
        urls: Sequence[str] = (),
        metrics: str | None = None,
        daily_at: str | None = None,
        on_trouble: Callable[[str | None], None] | None = None,
    ) -> None:
        self.session = session
        self.account = account
        self.clock = clock
        self.deliveries = (
            Deliveries(apprise_sender(urls), clock=clock, count=len(urls), on_trouble=on_trouble) if urls else None
        )
        self.metrics = MetricsServer(metrics) if metrics else None
        if self.metrics is not None:
            self.metrics.add(SessionCollector(account, session, clock))
        self.schedule = DailySchedule(daily_at) if daily_at and self.deliveries is not None else None

    def start(self) -> None:
        """Open the metrics endpoint (raises OSError, said in one line, when its port is taken)."""
        if self.metrics is not None:
            self.metrics.start()

    def alerts(self, events: list[AlertEvent]) -> None:
        """Each alert that fired or resolved, as one message to every destination."""
        if self.deliveries is not None:
            for event in events:
                message = alert_message(event, self.account)
                self.deliveries.send(message.title, message.body)

    async def run(self) -> None:
        tasks = []
        if self.deliveries is not None:
            tasks.append(asyncio.create_task(self.deliveries.run(), name="reach-deliveries"))
        if self.schedule is not None:
            tasks.append(asyncio.create_task(self._summaries(), name="reach-summary"))
        if tasks:
            await asyncio.gather(*tasks)

    async def close(self) -> None:
        if self.deliveries is not None:
            await self.deliveries.drain(DRAIN_ON_EXIT)
        if self.metrics is not None:
            self.metrics.stop()

    async def _summaries(self) -> None:
        assert self.schedule is not None and self.deliveries is not None
        while True:
            if self.schedule.due(self.clock.time_ms()):
                message = self.daily_message()
                self.deliveries.send(message.title, message.body)
            await self.clock.sleep(SUMMARY_CHECK_EVERY)

    def daily_message(self) -> Message:
        """Yesterday (UTC) by reason, from the history where it is kept, and the account as it stands now."""
        start = yesterday_start(self.clock.time_ms())
        day, funding = self._yesterday(start)
        lines = day_text(self.account, day, funding) + now_text(self.session.snapshot)
        return Message(f"balance-tui {self.account}: daily summary for {day.day}", "\n".join(lines))

    def _yesterday(self, start: int) -> tuple[TodayView, list[Change]]:
        history = self.session.history
        if history is not None:
            try:
                changes = history.store.changes(history.account, since_ms=start)
                trades = history.store.trades(history.account, since_ms=start)
                day = [c for c in changes if c.at_ms < start + DAY_MS]
                return day_from_history(start, day, trades), [c for c in day if c.reason == "FUNDING_FEE"]
            except HistoryError as exc:
                log.warning("daily summary without history: %s", exc)
        previous = self.session.today.previous  # without history: what this run saw of the day, if it ran then
        if previous is not None and previous.day == day_of(start):
            return previous, []
        return TodayView(day_of(start), None), []
