"""The account feed: the shell that moves the exchange's replies, pushes and marks (services/markflow.py) into the
account core and tells what came of it, as events (services/events.py).

It keeps no copy of the account (that is :class:`~services.account.AccountState`), decides no pace of its own (that is
:class:`~services.pacing.Pacing`) and turns every failure into a state in one place (:mod:`services.linkstate`). A poll
starts only when the previous one has ended, so requests never pile up; each reply of a poll is applied the moment it
arrives, whatever becomes of the others; and the app's own weight stays inside its share of the IP's limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable
from typing import Any

from services.account import AccountState, Outcome, Reply
from services.backoff import Backoff
from services.book import PositionBook
from services.client import Fetched, WsApiClient
from services.clock import Clock
from services.errors import CredentialsRejected, ExchangeError, RateLimited
from services.events import BalanceChangeEvent, FeedEvent, KeyAuditEvent, SnapshotEvent, StatusEvent, TradeEvent
from services.keyaudit import KeyAudit
from services.keycheck import KeyChecker
from services.linkstate import LinkStatus, classify, worst
from services.markflow import EPSILON, MarkFlow
from services.marks import MarkPriceStream
from services.models import AccountSnapshot, ConnectionStatus, LinkState
from services.pacing import BALANCE, POSITIONS, STATUS, STATUS_V1, Pacing, clamp
from services.pushflow import PushFlow
from services.stream import UserDataStream
from services.tasks import cancel_and_wait, wait_or_set
from services.weight import DEFAULT_LIMIT, WeightBudget

log = logging.getLogger("balance_tui.feed")


class AccountFeed:
    """One account's polls, pushes and marks; controllable (refresh now, pause, interval) while it runs."""

    def __init__(
        self,
        client: WsApiClient,
        *,
        interval: float = 2.0,
        full_every: float = 600.0,
        backoff: Backoff | None = None,
        stream: UserDataStream | None = None,
        reconcile_every: float = 60.0,
        push_debounce: float = 1.0,
        budget: WeightBudget | None = None,
        marks: MarkPriceStream | None = None,
        keys: KeyChecker | None = None,
    ) -> None:
        self.client = client
        self.keys = keys  # the key's permissions: checked at start, every few hours, and to explain a -2015
        self.clock: Clock = client.clock
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.stream = stream
        self.marks = marks
        self.account = AccountState(stream=stream is not None)
        self.pacing = Pacing(
            interval=clamp(interval),
            full_every=full_every,
            reconcile_every=reconcile_every,
            push_debounce=push_debounce,
            budget=budget or WeightBudget(),
        )
        self.paused = False
        self.applied = 0  # replies the last refresh applied (before whatever failed)
        self._queue: asyncio.Queue[FeedEvent | BaseException] = asyncio.Queue()
        self.link = LinkStatus(self.clock.time_ms, client.url, lambda status: self._emit(StatusEvent(status)))
        self.link.update(quietly=True, interval_ms=self._interval_ms(), stream=self.account.trust.state)
        self._wake = asyncio.Event()
        self._force = False
        self._failures = 0
        self._logged_window = -1
        self.markflow = MarkFlow(marks, self.account, client, self._paint, self._wake.set) if marks else None

    # -- what it knows ------------------------------------------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        return self.link.status

    @property
    def book(self) -> PositionBook:  # the positions and their marks (the account core's)
        return self.account.positions

    @property
    def interval(self) -> float:
        return self.pacing.interval

    @property
    def stream_state(self) -> str:
        return self.account.trust.state

    @property
    def streaming(self) -> bool:
        """The stream is trusted to deliver wallet changes (not merely open)."""
        return self.account.trust.trusted

    def snapshot(self, cause: Any = None) -> AccountSnapshot | None:
        """What the account looks like now (None before the first poll)."""
        return self.account.snapshot(
            self.client.server_time_ms(),
            cause=cause,
            clock_offset_ms=self.client.clock_offset_ms,
            weight_budget=self.allowance(),
        )

    def effective_interval(self) -> float:
        """The wait between regular polls: the user's interval, slowed by a trusted stream and a busy IP."""
        return self.pacing.effective_interval(relying=self._relying(), busy=self._busy())

    def allowance(self) -> int:
        """This app's weight per minute. Never below one refresh: a budget of nothing would freeze the screen."""
        reading = self.account.weight
        floor = self.pacing.cost((STATUS_V1, BALANCE), self.client.weights.of)
        return self.pacing.allowance(reading.limit if reading else DEFAULT_LIMIT, streaming=self.streaming, floor=floor)

    def next_refresh_weight(self) -> int:
        calls = self.pacing.calls(self.clock.monotonic(), self.client.connections_opened)
        return self.pacing.cost(calls, self.client.weights.of)

    # -- control ----------------------------------------------------------------------------------------------

    def set_interval(self, seconds: float) -> float:
        """Change the poll interval (clamped to 0.5 s … 5 min); takes effect at once, and the state lines say so."""
        self.pacing.interval = clamp(seconds)
        self.link.update(interval_ms=self._interval_ms())
        self._wake.set()
        return self.pacing.interval

    def refresh_now(self) -> None:
        """Poll now, and retry now whatever the feed was waiting for (except a rate limit or the budget)."""
        self.paused = False
        self._force = True
        self._wake.set()

    def pause(self) -> None:
        self.paused = True
        self._wake.set()

    def resume(self) -> None:
        self.paused = False
        self._force = True
        self._wake.set()

    # -- one poll ---------------------------------------------------------------------------------------------

    async def refresh(self) -> AccountSnapshot:
        """Poll once: each reply applied (and told) the moment it arrives; raises the worst of the client's typed
        errors if a call failed, after what the others brought is in."""
        client = self.client
        self.applied = 0
        if not client.connected:
            await client.connect()
        connection = client.connections_opened
        started = self.clock.monotonic()
        asked = client.server_time_ms()
        calls = {asyncio.ensure_future(self._fetch(m)): m for m in self.pacing.calls(started, connection)}
        pending = set(calls)
        errors: list[ExchangeError] = []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                applied = self.applied
                for task in done:  # replies that came together are told together
                    try:
                        fetched = task.result()
                    except ExchangeError as exc:
                        errors.append(exc)
                        self.pacing.failed(calls[task])
                        continue
                    self._apply(calls[task], fetched, asked, connection, started)
                    self.applied += 1
                if self.applied > applied and (snapshot := self.snapshot("poll")) is not None:
                    self._emit(SnapshotEvent(snapshot))
        finally:
            await cancel_and_wait(pending)
        if errors:
            raise worst(errors)
        snapshot = self.snapshot("poll")
        assert snapshot is not None  # every call answered: the balances among them
        return snapshot

    def _fetch(self, method: str) -> Awaitable[Fetched[Any]]:
        if method == POSITIONS:
            return self.client.fetch_positions()
        if method == BALANCE:
            return self.client.fetch_account_balance(v2=False)
        return self.client.fetch_account_status(v2=method == STATUS)

    def _apply(self, method: str, fetched: Fetched[Any], asked: int, connection: int, started: float) -> None:
        """One reply into the account: a fact on its own, whatever became of the rest of its poll."""
        reply = Reply(
            method=fetched.method,
            asked_at_ms=asked,
            answered_at_ms=self.client.server_time_ms(),
            received_at_ms=self.clock.time_ms(),
            weight=fetched.weight,
            rtt_ms=fetched.rtt_ms,
        )
        if method == POSITIONS:
            outcome = self.account.positions_polled(fetched.value, reply)
        elif method == BALANCE:
            outcome = self.account.balance_polled(fetched.value, reply)
        else:
            outcome = self.account.status_polled(fetched.value, reply)
            self.pacing.polled(started)  # it answers the reconciles asked before the poll was sent
            self.link.update(quietly=True, last_success_ms=reply.received_at_ms, interval_ms=self._interval_ms())
        self.pacing.answered(method, self.clock.monotonic(), connection)
        self._follow(outcome)

    def _follow(self, outcome: Outcome) -> None:
        """What an event asked for: the changes told, a reconcile or a full refresh planned, marks followed."""
        for change in outcome.changes:
            self._emit(BalanceChangeEvent(change))
        for trade in outcome.trades:
            self._emit(TradeEvent(trade))
        if outcome.full_refresh:
            self.pacing.want_full()
        if outcome.positions_wanted:
            self.pacing.want_positions()
        if outcome.reconcile and self.pacing.reconcile(self.clock.monotonic()):
            self._wake.set()
        if outcome.follow_marks and self.markflow is not None:
            self.markflow.follow()
        if outcome.stream_changed:
            self._stream_changed()

    # -- the loops --------------------------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[FeedEvent, None]:
        """Poll (and listen) until cancelled, yielding each snapshot, each change of state, each margin call."""
        self._queue = asyncio.Queue()
        self.link.told()
        yield StatusEvent(self.status)
        tasks = [asyncio.create_task(self._guard(self._poll_loop()), name="feed-polls")]
        if self.stream is not None:
            pushes = PushFlow(self.stream, self.account, self.client, follow=self._follow, emit=self._emit,
                              paint=self._pushed, stream_changed=self._stream_changed)  # fmt: skip
            tasks.append(asyncio.create_task(self._guard(pushes.take()), name="feed-stream"))
        if self.keys is not None:
            tasks.append(asyncio.create_task(self._guard(self.keys.watch(self._audited)), name="feed-keys"))
        if self.markflow is not None:
            tasks.append(asyncio.create_task(self._guard(self.markflow.take()), name="feed-marks"))
            tasks.append(asyncio.create_task(self._guard(self.markflow.paint()), name="feed-paint"))
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await cancel_and_wait(tasks)
            if self.stream is not None:
                await self.stream.close()

    async def _guard(self, loop: Any) -> None:
        try:
            await loop
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a network fault: let the consumer see it rather than hang
            log.exception("feed loop failed")
            self._queue.put_nowait(exc)

    def _emit(self, event: FeedEvent) -> None:
        self._queue.put_nowait(event)

    async def _poll_loop(self) -> None:
        while True:
            if self.paused:
                if self.status.state is not LinkState.PAUSED:
                    self.link.set(LinkState.PAUSED, detail="paused: press p to resume")
                await self._wait(None)
                continue
            await self._within_budget()
            try:
                await self.refresh()
            except (CredentialsRejected, RateLimited) as exc:
                await self._failed(exc)  # a person must act, or the exchange said wait: whatever else came
                continue
            except ExchangeError as exc:
                if not self.applied:
                    await self._failed(exc)
                    continue
                # Numbers came, and the rest is asked again with the next poll, at the usual pace: a poor link that
                # answers some of each refresh is a link that works (the client paces its reconnects itself).
                log.warning("part of a refresh failed (asked again with the next): %s", exc)
            self.backoff.reset()
            self._failures = 0
            self._force = False
            if self.status.state is not LinkState.LIVE:
                self.link.set(LinkState.LIVE, detail="")
            self._log_weight()
            await self._until_next_poll(self.clock.monotonic())

    def _audited(self, audit: KeyAudit) -> None:
        self._emit(KeyAuditEvent(audit))

    async def _failed(self, exc: ExchangeError) -> None:
        """Show the failure as its state, and wait as it says (a key press retries sooner, but for a rate limit)."""
        rejection = None
        if isinstance(exc, CredentialsRejected) and self.keys is not None:
            rejection = await self.keys.explain(exc, self._audited)
        failure = classify(
            exc,
            backoff=self.backoff.next_delay,
            interval=self.pacing.interval,
            base=self.client.backoff.base,
            rejection=rejection,
        )
        if failure.wait is None:  # retrying cannot help until a person acts: wait for a refresh, no retry storm
            self.link.set(failure.state, detail=failure.detail)
            self._force = False
            while not self._force:
                await self._wait(None)
        elif failure.retry_at_server_ms is not None:
            self.link.set(failure.state, detail=failure.detail, retry_at_ms=failure.retry_at_server_ms)
            await self._wait_until_server_time(failure.retry_at_server_ms)
        else:
            self._failures += 1
            retry_at = self.clock.time_ms() + round(failure.wait * 1000)
            self.link.set(failure.state, detail=failure.detail, retry_at_ms=retry_at, attempt=self._failures)
            await self._sleep_unless_forced(failure.wait)

    def _log_weight(self) -> None:
        """One line a minute for the diagnostics log: the IP's weight, ours, and the budget."""
        if (weight := self.account.weight) is not None and weight.server_time_ms // 60_000 != self._logged_window:
            self._logged_window = weight.server_time_ms // 60_000
            log.info("weight %d/%d this minute: this app %d, other programs %d, budget %d",
                     weight.count, weight.limit, weight.own, weight.others, self.allowance())  # fmt: skip

    async def _until_next_poll(self, polled_at: float) -> None:
        """Wait for the next regular poll, a due reconcile, a key press, or a change of pace."""
        while True:
            now = self.clock.monotonic()
            due = self.pacing.next_poll_at(polled_at, relying=self._relying(), busy=self._busy())
            if self._force or self.paused or now >= due - EPSILON:
                return
            await self._wait(due - now)

    def _relying(self) -> bool:
        return self.streaming and (self.marks is None or self.book.marks_fresh(self.client.server_time_ms()))

    def _busy(self) -> bool:
        reading = self.account.weight
        return reading is not None and self.pacing.budget.busy(reading.count, reading.limit)

    def _interval_ms(self) -> int:
        return round(self.effective_interval() * 1000)

    async def _sleep_unless_forced(self, seconds: float) -> None:
        deadline = self.clock.monotonic() + seconds
        self._force = False
        while not self._force and (left := deadline - self.clock.monotonic()) > EPSILON:
            await self._wait(left)

    async def _within_budget(self) -> None:
        """Hold the next poll until this app's own weight this window leaves room for it."""
        while self.client.own_weight() + self.next_refresh_weight() > self.allowance():
            log.info("holding the next poll: %d of %d weight used this minute", self.client.own_weight(),
                     self.allowance())  # fmt: skip
            await self._wait_until_server_time(self.client.window_resets_at_ms())

    def _pushed(self) -> None:
        if (snapshot := self.snapshot("push")) is not None:
            self._emit(SnapshotEvent(snapshot))

    def _paint(self) -> None:
        """The marks moved (or stopped): a snapshot for the screen, once a poll has given the account."""
        if self.account.polled and (snapshot := self.snapshot("mark")) is not None:
            self._emit(SnapshotEvent(snapshot))

    def _stream_changed(self) -> None:
        """The stream's state changed: the pace of polling depends on it, and the state lines say it."""
        trust = self.account.trust
        self.link.update(stream=trust.state, stream_detail=trust.detail, interval_ms=self._interval_ms())
        self._wake.set()

    # -- waiting ------------------------------------------------------------------------------------------------

    async def _wait(self, seconds: float | None) -> None:
        """Sleep on the injected clock, or until a control call wakes the feed: whichever is first."""
        self._wake.clear()  # a wake-up asked before this wait was answered by the poll just made
        await wait_or_set(self.clock, seconds, self._wake)

    async def _wait_until_server_time(self, at_ms: int) -> None:
        # A rate limit or the budget is a rule, not a preference: a key press does not cut it short.
        while (left := at_ms - self.client.server_time_ms()) > 0:
            await self.clock.sleep(left / 1000)
