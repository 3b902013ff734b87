"""Mark prices into the account core, and bursts of them into one snapshot a second (the feed's marks part)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.account import AccountState
from services.client import WsApiClient
from services.marks import MarkPriceStream, MarkState
from services.positions import MarkPrice
from services.tasks import wait_or_set

log = logging.getLogger("balance_tui.feed")

#: Marks arrive once a second per symbol (``@markPrice@1s``): the screen is told once a burst (every held symbol's
#: mark of one second) is in, or this long after its first mark when a symbol's mark does not come.
MARK_SETTLE = 0.05
EPSILON = 0.001  # seconds: a wait shorter than this is no wait (and float remainders must not spin)


class MarkFlow:
    """Follows the symbols the account holds, applies each mark, and calls ``paint`` once a burst is in (or the marks
    stopped) and ``pace_changed`` when marks stop or flow again (polling falls back to the interval meanwhile)."""

    def __init__(
        self,
        marks: MarkPriceStream,
        account: AccountState,
        client: WsApiClient,
        paint: Callable[[], None],
        pace_changed: Callable[[], None],
    ) -> None:
        self.marks = marks
        self.account = account
        self.client = client
        self.clock = client.clock
        self._paint = paint
        self._pace_changed = pace_changed
        self._due = False
        self._moved = asyncio.Event()  # a mark arrived, or the symbols held changed
        self._were_stale = False

    def follow(self) -> None:
        self.marks.follow(self.account.positions.held_symbols())
        self._moved.set()  # a symbol held without a mark yet makes the marks stale: look now

    async def take(self) -> None:
        async for item in self.marks.events():
            if isinstance(item, MarkState):
                log.info("mark prices: %s %s", item.state, item.detail)
            elif isinstance(item, MarkPrice):
                self.account.mark(item)
                self._due = True
                self._moved.set()

    async def paint(self) -> None:
        """Marks coalesced: one snapshot for each second of marks, and a word when marks go stale.

        The held symbols' marks of one second arrive a frame each, milliseconds apart. The burst is painted the
        moment its last mark is in, judged by the marks' own times (the exchange's), or ``MARK_SETTLE`` after its
        first mark if a symbol's does not come. Judging by a wait on the local clock instead held a burst that came
        in just after a paint for a second of that clock, which may never pass (a test's virtual clock standing
        still, a loop stalled). The loop sleeps until a mark arrives or the marks would turn stale, never on a
        free-running timer: an account without positions costs nothing here.
        """
        book = self.account.positions
        while True:
            now = self.client.server_time_ms()  # the book keeps the exchange's time, as marks are stamped
            until = book.marks_fresh_until()
            wait = None if until is None or until <= now else (until - now) / 1000
            await wait_or_set(self.clock, wait, self._moved)  # at once if a mark came while the last paint was made
            self._moved.clear()
            settled_at = self.clock.monotonic() + MARK_SETTLE
            while self._due and not book.burst_complete():
                left = settled_at - self.clock.monotonic()
                if left <= EPSILON:
                    break  # a symbol's mark did not come this second: paint what did
                await wait_or_set(self.clock, left, self._moved)
                self._moved.clear()
            self._painted(self.client.server_time_ms())

    def _painted(self, now: int) -> None:
        book = self.account.positions
        stale = bool(book.held_symbols()) and not book.marks_fresh(now)
        if stale != self._were_stale:
            self._were_stale = stale
            if book.has_marks():  # before the first mark there is nothing to say: polls show the figures
                log.log(logging.WARNING if stale else logging.INFO, "mark prices %s",
                        "stopped: showing the last poll's figures" if stale else "flowing")  # fmt: skip
            self._due = True
            self._pace_changed()
        if not (self._due and self.account.polled):
            return
        self._due = False
        self._paint()
