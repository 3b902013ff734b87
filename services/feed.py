"""The account feed: polls and pushes merged into one stream of snapshots, within a weight budget.

It yields :class:`SnapshotEvent` (a new :class:`AccountSnapshot`), :class:`StatusEvent` (the connection's state
changed) and :class:`MarginCallEvent`. A poll starts only when the previous one has ended, so requests never pile
up; every failure becomes a state with a countdown rather than an exception; and the app's own request weight stays
inside its share of the IP's limit, which every other program of the trader shares.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.backoff import Backoff
from services.book import AccountBook
from services.clock import Clock
from services.errors import CredentialsRejected, ExchangeError, NetworkError, RateLimited, RequestRejected, because
from services.history import Change
from services.marks import MarkPriceStream, MarkState
from services.models import (
    AccountConfigUpdate,
    AccountSnapshot,
    AccountStatus,
    AccountUpdate,
    AccountUpdateData,
    AssetBalance,
    BalanceChange,
    BalanceRow,
    ConnectionStatus,
    LinkState,
    MarginCall,
    WeightReading,
)
from services.positions import MarkPrice, Position
from services.stream import StreamState, UserDataStream
from services.tasks import cancel_and_wait
from services.trust import PolledRow, StreamTrust
from services.weight import DEFAULT_LIMIT, WeightBudget
from services.wsapi import Fetched, WsApiClient

log = logging.getLogger("balance_tui.feed")

MIN_INTERVAL = 0.5
MAX_INTERVAL = 300.0
#: The calls of a refresh (their weights are what the exchange counts: the client's WeightTable): a regular one is
#: ``v2/account.status``; a full one ``account.status`` (the Multi-Assets flag) and ``account.balance`` (the margin
#: flags); positions, at start, on each new connection and at most once a reconcile interval.
POLL_CALLS = ("v2/account.status",)
FULL_POLL_CALLS = ("account.status", "account.balance")
POSITIONS_CALLS = ("v2/account.position",)
#: Marks arrive once a second per symbol (``@markPrice@1s``): the screen is told once a burst (every held symbol's
#: mark of one second) is in, or this long after its first mark when a symbol's mark does not come.
MARK_SETTLE = 0.05
EPSILON = 0.001  # seconds: a wait shorter than this is no wait (and float remainders must not spin)


@dataclass(frozen=True)
class SnapshotEvent:
    """A new snapshot of the account."""

    snapshot: AccountSnapshot


@dataclass(frozen=True)
class StatusEvent:
    """The connection's state changed."""

    status: ConnectionStatus


@dataclass(frozen=True)
class MarginCallEvent:
    """The exchange sent a MARGIN_CALL: positions are close to liquidation."""

    margin_call: MarginCall


@dataclass(frozen=True)
class BalanceChangeEvent:
    """An asset's wallet changed: pushed with its reason, or found by a poll with none (for the history)."""

    change: Change


FeedEvent = SnapshotEvent | StatusEvent | MarginCallEvent | BalanceChangeEvent


class AccountFeed:
    """Polls balances, applies pushes, and is controllable (refresh now, pause, interval) while it runs.

    The calls of a refresh, chosen for the least weight that fills every column (docs/DECISIONS.md):

    - a regular refresh is one ``v2/account.status`` (weight 5): wallet, cross wallet, cross uPnL, available, max
      withdraw and the account totals, in a reply that lists only the symbols in use;
    - a full refresh — on each new connection, every ``full_every`` seconds, after a Multi-Assets switch, and when
      an asset appears whose margin flag is unknown — adds ``account.balance`` (weight 5), the only method whose rows
      always carry ``marginAvailable`` (single-asset ``account.status`` may omit it), and asks the v1
      ``account.status`` for the Multi-Assets flag v2 lacks: weight 10. The flags it gives are kept until the next
      one; a status row that carries its own flag wins, being newer.

    With the user-data stream trusted (:mod:`services.trust`), wallet changes arrive as pushes at no weight; polling
    then drops to a slow reconcile every ``reconcile_every`` seconds, plus one shortly after each burst of pushes for
    the columns a push does not carry (available, max withdraw, unrealized PnL). An unproven or silent stream is
    not relied on: polling stays at the interval, within the polling share of the budget.
    """

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
    ) -> None:
        self.client = client
        self.clock: Clock = client.clock
        self._interval = _clamp(interval)
        self.full_every = full_every
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.stream = stream
        self.reconcile_every = reconcile_every
        self.push_debounce = push_debounce
        self.budget = budget or WeightBudget()
        self.paused = False
        self.trust = StreamTrust(enabled=stream is not None)
        self.book = AccountBook()
        self.marks = marks
        self._positions_at: float | None = None
        self._positions_connection = -1
        self._paint_due = False
        self._marks_moved = asyncio.Event()  # a mark arrived, or the symbols held changed
        self._marks_were_stale = False
        self.reading: WeightReading | None = None  # the latest weight reading of this feed's own replies
        self.status = self._status(LinkState.CONNECTING, detail=f"connecting to {client.url}")
        self._published: ConnectionStatus | None = None
        self.last_snapshot: AccountSnapshot | None = None
        self._wake = asyncio.Event()
        self._force = False
        self._failures = 0
        self._logged_window = -1
        self._reconcile_at: float | None = None
        self._reconcile_asked_at: float | None = None
        self._multi_assets: bool | None = None
        self._margin_flags: dict[str, bool] = {}
        self._full_at: float | None = None
        self._full_connection = -1
        self._full_wanted = False
        self._pushed: dict[str, _Push] = {}  # per asset, the last push a poll has not yet caught up with
        self._queue: asyncio.Queue[FeedEvent | BaseException] = asyncio.Queue()

    # -- control ----------------------------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def stream_state(self) -> str:
        return self.trust.state

    @property
    def streaming(self) -> bool:
        """The stream is trusted to deliver wallet changes (not merely open)."""
        return self.trust.trusted

    def effective_interval(self) -> float:
        """The wait between regular polls: the user's interval, slowed by a trusted stream and a busy IP."""
        relying = self.streaming and (self.marks is None or self.book.marks_fresh(self.client.server_time_ms()))
        interval = max(self._interval, self.reconcile_every) if relying else self._interval
        reading = self.reading
        if reading is not None and self.budget.busy(reading.count, reading.limit):
            interval *= self.budget.slow_factor
        return interval

    def allowance(self) -> int:
        """This app's weight per minute. Never below one refresh: a budget of nothing would freeze the screen."""
        limit = self.reading.limit if self.reading is not None else DEFAULT_LIMIT
        return max(self._cost(FULL_POLL_CALLS), self.budget.allowance(limit, streaming=self.streaming))

    def _cost(self, calls: tuple[str, ...]) -> int:
        return sum(self.client.weights.of(method) for method in calls)

    def set_interval(self, seconds: float) -> float:
        """Change the poll interval (clamped to 0.5 s … 5 min); takes effect at once, and the state lines say so."""
        self._interval = _clamp(seconds)
        self.status = self.status.model_copy(update={"interval_ms": round(self.effective_interval() * 1000)})
        self._publish()
        self._wake.set()
        return self._interval

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

    def _full_due(self) -> bool:
        return (
            self._full_wanted
            or self._multi_assets is None
            or self._full_connection != self.client.connections_opened
            or self._full_at is None
            or self.clock.monotonic() - self._full_at >= self.full_every
        )

    def _positions_due(self) -> bool:
        return (
            self._positions_at is None
            or self._positions_connection != self.client.connections_opened
            or self.clock.monotonic() - self._positions_at >= self.reconcile_every
        )

    def next_refresh_weight(self) -> int:
        positions = self._cost(POSITIONS_CALLS) if self._positions_due() else 0
        return self._cost(FULL_POLL_CALLS if self._full_due() else POLL_CALLS) + positions

    async def refresh(self) -> AccountSnapshot:
        """Poll once and return the new snapshot; raises the client's typed errors."""
        client = self.client
        if not client.connected:
            await client.connect()
        full = self._full_due()
        balance: Fetched[list[BalanceRow]] | None = None
        positions: Fetched[list[Position]] | None = None
        calls: list[Any] = [client.fetch_account_status(v2=not full)]
        if full:
            calls.append(client.fetch_account_balance(v2=False))
        if self._positions_due():
            calls.append(client.fetch_positions())
        asked_at = client.server_time_ms()
        results = await asyncio.gather(*calls)
        fetched = results[0]
        for result in results[1:]:
            if result.method == "v2/account.position":
                positions = result
            else:
                balance = result
        if positions is not None:
            self._positions_at = self.clock.monotonic()
            self._positions_connection = client.connections_opened
            # Stamped on the exchange's clock, as marks are (a local clock ahead would let a poll outrank every mark
            # while it is off), with the moment it was asked: the exchange's figures are of some moment between
            # asking and answer, so a mark from after the asking is as new as they are, and is used.
            self.book.positions_polled(positions.value, asked_at)
            self._follow_marks()
        status = fetched.value
        if balance is not None:
            self._multi_assets = status.multi_assets_margin
            self._margin_flags = {
                row.asset: row.margin_available for row in balance.value if row.margin_available is not None
            }
            self._full_at = self.clock.monotonic()
            self._full_connection = client.connections_opened
            self._full_wanted = False
        if any(row.margin_available is None and row.asset not in self._margin_flags for row in status.assets):
            self._full_wanted = True  # an asset new to us: its flag comes with the next refresh
        snapshot = self._snapshot_from(status, fetched, balance, positions)
        self._judge_stream(status, snapshot)
        self._unreported_changes(snapshot)
        self.last_snapshot = snapshot
        self.book.balances(snapshot, polled=True)
        return self.book.snapshot(self.client.server_time_ms()) or snapshot

    def _snapshot_from(
        self,
        status: AccountStatus,
        fetched: Fetched[AccountStatus],
        balance: Fetched[list[BalanceRow]] | None,
        positions: Fetched[list[Position]] | None,
    ) -> AccountSnapshot:
        received = self.clock.time_ms()
        method = fetched.method if balance is None else f"{fetched.method} + {balance.method}"
        balances = {}
        for row in status.assets:
            polled = AssetBalance.from_status(row, method=method, received_at_ms=received).flagged(
                margin_flag=self._margin_flags.get(row.asset), multi_assets=self._multi_assets
            )
            balances[row.asset] = self._with_newer_push(polled)
        # The reading of the last reply of this refresh: its count includes the whole refresh.
        replies = (fetched, balance, positions)
        readings = [r.weight for r in replies if r is not None and r.weight is not None]
        reading = max(readings, key=lambda r: (r.server_time_ms, r.count)) if readings else None
        if reading is not None:
            self.reading = reading
        return AccountSnapshot(
            balances=balances,
            totals=status.totals(),
            multi_assets_margin=self._multi_assets,
            weight=reading,
            server_time_ms=self.client.server_time_ms(),
            received_at_ms=received,
            rtt_ms=fetched.rtt_ms,
            clock_offset_ms=self.client.clock_offset_ms,
            weight_budget=self.allowance(),
            cause="poll",
        )

    def _unreported_changes(self, snapshot: AccountSnapshot) -> None:
        """Wallets a poll finds changed with no push for them: recorded too, with no reason the exchange gave."""
        before = self.last_snapshot
        if before is None:
            return
        for asset, row in snapshot.balances.items():
            old = before.balances.get(asset)
            if old is not None and old.wallet_balance != row.wallet_balance and row.source == "poll":
                at = row.update_time_ms or snapshot.received_at_ms
                delta = row.wallet_balance - old.wallet_balance
                self._changed(asset, old.wallet_balance, row.wallet_balance, delta, at, None, "poll")

    def _changed(
        self,
        asset: str,
        old: Decimal | None,
        new: Decimal,
        delta: Decimal | None,
        at_ms: int,
        why: AccountUpdateData | None,
        source: str,
    ) -> None:
        """Tell the history an asset's wallet changed: with the push's reason and symbol, or UNKNOWN from a poll."""
        reason = (why.reason if why is not None else "") or "UNKNOWN"
        symbol = why.symbol if why is not None else None
        self._emit(BalanceChangeEvent(Change(at_ms, asset, old, new, delta, reason, symbol, source)))

    def _judge_stream(self, status: AccountStatus, snapshot: AccountSnapshot) -> None:
        rows = [PolledRow(r.asset, r.wallet_balance, r.cross_wallet_balance, r.update_time) for r in status.assets]
        if self.trust.polled(rows, snapshot.server_time_ms):
            self._stream_changed()

    def _with_newer_push(self, polled: AssetBalance) -> AssetBalance:
        """A poll older than the last push for an asset must not undo the push's wallet figures.

        A poll's ``updateTime`` is the time of the asset's last transaction, which a push carries as ``T`` (its
        ``E``, the event's time, is a few ms later): they are compared with each other."""
        pushed = self._pushed.get(polled.asset)
        if pushed is None:
            return polled
        if polled.update_time_ms >= pushed.transaction_time:
            del self._pushed[polled.asset]  # the poll has caught up
            return polled
        return pushed.row(polled)

    # -- pushes -----------------------------------------------------------------------------------------------

    def apply_account_update(self, event: AccountUpdate) -> AccountSnapshot | None:
        """Apply an ACCOUNT_UPDATE's absolute ``wb``/``cw``; returns the new snapshot, or None if nothing changed."""
        received = self.clock.time_ms()
        # When the change happened, to compare with a poll's updateTime (the push's E is a few ms later).
        happened = event.transaction_time or event.event_time
        changed: list[str] = []
        for change in event.data.balances:
            last = self._pushed.get(change.asset)
            snapshot_row = self.last_snapshot.balances.get(change.asset) if self.last_snapshot else None
            # Strictly older only: the stream delivers in order, and values are absolute, so an event stamped the
            # same millisecond as what we hold is the later word on it. Pushes are ordered by E among themselves; a
            # poll speaks of its updateTime, which is a push's T.
            older_push = last is not None and event.event_time < last.event_time
            older_poll = last is None and snapshot_row is not None and happened < snapshot_row.update_time_ms
            if older_push or older_poll:
                log.info("ignored an older ACCOUNT_UPDATE for %s (E=%d)", change.asset, event.event_time)
                continue
            old = last.change.wallet_balance if last else (snapshot_row.wallet_balance if snapshot_row else None)
            if old != change.wallet_balance:
                # An asset no poll has listed yet: its old balance is not known, and neither is the change (bc
                # leaves out PnL and commission; 0 would be a guess).
                delta = change.wallet_balance - old if old is not None else None
                self._changed(change.asset, old, change.wallet_balance, delta, happened, event.data, "push")
            self._pushed[change.asset] = _Push(event.event_time, happened, change, received, event.data.reason)
            self.trust.pushed(change.asset, change.wallet_balance, change.cross_wallet_balance, happened)
            changed.append(change.asset)
        if event.data.positions:
            self.book.positions_pushed(event.data.positions, event.event_time)
            self._follow_marks()
            self._schedule_reconcile()
        if changed:
            self._schedule_reconcile()  # an asset new to us, too, arrives with the next poll
        if (not changed and not event.data.positions) or self.last_snapshot is None:
            return None
        balances = dict(self.last_snapshot.balances)
        for asset in changed:
            if asset in balances:
                balances[asset] = self._pushed[asset].row(balances[asset])
        self.last_snapshot = self.last_snapshot.model_copy(update={"balances": balances, "cause": "push"})
        self.book.balances(self.last_snapshot, polled=False)
        return self.book.snapshot(self.client.server_time_ms()) or self.last_snapshot

    def apply_config_update(self, event: AccountConfigUpdate) -> AccountSnapshot | None:
        if event.multi_assets is None:
            return None  # a leverage change: nothing balance-tui shows
        self._multi_assets = event.multi_assets
        self._full_wanted = True  # which assets count as margin changes with the mode
        self._schedule_reconcile()  # totals are counted differently in the other mode
        if self.last_snapshot is None:
            return None
        self.last_snapshot = self.last_snapshot.model_copy(
            update={"multi_assets_margin": event.multi_assets, "cause": "push"}
        )
        self.book.balances(self.last_snapshot, polled=False)
        return self.book.snapshot(self.client.server_time_ms()) or self.last_snapshot

    def _schedule_reconcile(self) -> None:
        now = self.clock.monotonic()
        self._reconcile_asked_at = now
        if self._reconcile_at is None:
            self._reconcile_at = now + self.push_debounce
            self._wake.set()

    def _reconcile_done(self, poll_started: float) -> None:
        """A poll succeeded: it answers the reconciles asked before it was sent, not one asked while in flight."""
        asked = self._reconcile_asked_at
        if asked is not None and asked >= poll_started:
            self._reconcile_at = asked + self.push_debounce
        else:
            self._reconcile_at = None
            self._reconcile_asked_at = None

    # -- the loops --------------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Poll (and listen) until cancelled, yielding each snapshot, each change of state, each margin call."""
        self._queue = asyncio.Queue()
        self._published = self.status
        yield StatusEvent(self.status)
        tasks = [asyncio.create_task(self._guard(self._poll_loop()), name="feed-polls")]
        if self.stream is not None:
            tasks.append(asyncio.create_task(self._guard(self._stream_loop()), name="feed-stream"))
        if self.marks is not None:
            tasks.append(asyncio.create_task(self._guard(self._marks_loop()), name="feed-marks"))
            tasks.append(asyncio.create_task(self._guard(self._paint_loop()), name="feed-paint"))
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
                    self._set(LinkState.PAUSED, detail="paused: press p to resume")
                await self._wait(None)
                continue
            await self._within_budget()
            poll_started = self.clock.monotonic()
            try:
                snapshot = await self.refresh()
            except CredentialsRejected as exc:
                # Retrying cannot help until a person acts: wait for an explicit refresh (no retry storm).
                self._set(LinkState.CREDENTIALS_REJECTED, detail=_credentials_hint(exc))
                self._force = False
                while not self._force:
                    await self._wait(None)
                continue
            except RateLimited as exc:
                state = LinkState.BANNED if exc.banned else LinkState.RATE_LIMITED
                self._set(state, detail=str(exc), retry_at_ms=exc.retry_at_ms)
                await self._wait_until_server_time(exc.retry_at_ms)
                continue
            except NetworkError as exc:
                # The client keeps the one reconnect backoff (the stream's attempts count too): follow its advice,
                # so the countdown on screen is the time of the next real attempt.
                await self._retry_later(LinkState.RECONNECTING, exc, max(exc.retry_in, self.client.backoff.base))
                continue
            except ExchangeError as exc:
                delay = self.backoff.next_delay()
                if isinstance(exc, RequestRejected):
                    delay = max(delay, self._interval)
                await self._retry_later(LinkState.ERROR, exc, delay)
                continue
            self.backoff.reset()
            self._failures = 0
            self._reconcile_done(poll_started)
            self._force = False
            if self.status.state is not LinkState.LIVE:
                self._set(LinkState.LIVE, last_success_ms=snapshot.received_at_ms)
            else:
                self.status = self.status.model_copy(
                    update={
                        "last_success_ms": snapshot.received_at_ms,
                        "interval_ms": round(self.effective_interval() * 1000),
                    }
                )
                self._published = self.status  # a new success time alone is not news for the state lines
            self._log_weight(snapshot)
            self._emit(SnapshotEvent(snapshot))
            await self._until_next_poll(self.clock.monotonic())

    async def _retry_later(self, state: LinkState, exc: ExchangeError, delay: float) -> None:
        """Show the failure with its countdown, then wait it out (a key press retries sooner)."""
        self._failures += 1
        self._set(
            state, detail=str(exc), retry_at_ms=self.clock.time_ms() + round(delay * 1000), attempt=self._failures
        )
        await self._sleep_unless_forced(delay)

    def _log_weight(self, snapshot: AccountSnapshot) -> None:
        """One line a minute for the diagnostics log: the IP's weight, ours, and the budget."""
        weight = snapshot.weight
        if weight is None:
            return
        window = weight.server_time_ms // 60_000
        if window == self._logged_window:
            return
        self._logged_window = window
        log.info(
            "weight %d/%d this minute: this app %d, other programs %d, budget %d; rtt %s ms",
            weight.count,
            weight.limit,
            weight.own,
            weight.others,
            snapshot.weight_budget or 0,
            snapshot.rtt_ms,
        )

    async def _until_next_poll(self, polled_at: float) -> None:
        """Wait for the next regular poll, a due reconcile, a key press, or a change of pace."""
        while True:
            now = self.clock.monotonic()
            due = polled_at + self.effective_interval()
            if self._reconcile_at is not None:
                due = min(due, self._reconcile_at)
            if self._force or self.paused or now >= due - EPSILON:
                return
            await self._wait(due - now)

    async def _sleep_unless_forced(self, seconds: float) -> None:
        deadline = self.clock.monotonic() + seconds
        self._force = False
        while not self._force and (left := deadline - self.clock.monotonic()) > EPSILON:
            await self._wait(left)

    async def _within_budget(self) -> None:
        """Hold the next poll until this app's own weight this window leaves room for it."""
        while self.client.own_weight() + self.next_refresh_weight() > self.allowance():
            resets = self.client.window_resets_at_ms()
            log.info(
                "holding the next poll: %d of %d weight used this minute", self.client.own_weight(), self.allowance()
            )
            await self._wait_until_server_time(resets)

    async def _stream_loop(self) -> None:
        assert self.stream is not None
        try:
            async for item in self.stream.events():
                if isinstance(item, StreamState):
                    if self.trust.link(item.state, self.client.server_time_ms(), item.detail):
                        self._stream_changed()
                    continue
                if self.trust.delivered():
                    self._stream_changed()
                if isinstance(item, AccountUpdate):
                    snapshot = self.apply_account_update(item)
                    if snapshot is not None:
                        self._emit(SnapshotEvent(snapshot))
                elif isinstance(item, AccountConfigUpdate):
                    snapshot = self.apply_config_update(item)
                    if snapshot is not None:
                        self._emit(SnapshotEvent(snapshot))
                elif isinstance(item, MarginCall):
                    self._emit(MarginCallEvent(item))
        except CredentialsRejected:
            # The poll loop reports rejected credentials; the stream just stops.
            if self.trust.link("off", self.client.server_time_ms(), "credentials rejected"):
                self._stream_changed()

    # -- marks --------------------------------------------------------------------------------------------------

    def _follow_marks(self) -> None:
        if self.marks is not None:
            self.marks.follow(self.book.held_symbols())
            self._marks_moved.set()  # a symbol held without a mark yet makes the marks stale: look now

    async def _marks_loop(self) -> None:
        assert self.marks is not None
        async for item in self.marks.events():
            if isinstance(item, MarkState):
                log.info("mark prices: %s %s", item.state, item.detail)
                continue
            if isinstance(item, MarkPrice):
                self.book.mark(item.symbol, item.price, item.event_time)
                self._paint_due = True
                self._marks_moved.set()

    async def _paint_loop(self) -> None:
        """Marks coalesced: one snapshot for each second of marks, and a word when marks go stale.

        The held symbols' marks of one second arrive a frame each, milliseconds apart. The burst is painted the
        moment its last mark is in, judged by the marks' own times (the exchange's), or ``MARK_SETTLE`` after its
        first mark if a symbol's does not come. Judging by a wait on the local clock instead held a burst that came
        in just after a paint for a second of that clock, which may never pass (a test's virtual clock standing
        still, a loop stalled). The loop sleeps until a mark arrives or the marks would turn stale, never on a
        free-running timer: an account without positions costs nothing here.
        """
        while True:
            now = self.client.server_time_ms()  # the book keeps the exchange's time, as marks are stamped
            until = self.book.marks_fresh_until()
            wait = None if until is None or until <= now else (until - now) / 1000
            await self._wait(wait, self._marks_moved)  # at once if a mark came while the last paint was made
            self._marks_moved.clear()
            settled_at = self.clock.monotonic() + MARK_SETTLE
            while self._paint_due and not self.book.burst_complete():
                left = settled_at - self.clock.monotonic()
                if left <= EPSILON:
                    break  # a symbol's mark did not come this second: paint what did
                await self._wait(left, self._marks_moved)
                self._marks_moved.clear()
            self._paint_marks(self.client.server_time_ms())

    def _paint_marks(self, now: int) -> None:
        """Tell the screen what the marks changed (and whether they stopped)."""
        stale = bool(self.book.held_symbols()) and not self.book.marks_fresh(now)
        if stale != self._marks_were_stale:
            self._marks_were_stale = stale
            if self.book.has_marks():  # before the first mark there is nothing to say: polls show the figures
                log.log(
                    logging.WARNING if stale else logging.INFO,
                    "mark prices %s",
                    "stopped: showing the last poll's figures" if stale else "flowing",
                )
            self._paint_due = True
            self._wake.set()  # polling falls back to the interval while marks are stale
        if not (self._paint_due and self.last_snapshot is not None):
            return
        self._paint_due = False
        snapshot = self.book.snapshot(now, cause="mark")
        if snapshot is not None:
            self._emit(SnapshotEvent(snapshot))

    def _stream_changed(self) -> None:
        """The stream's state changed: the pace of polling depends on it, and the state lines say it."""
        self.status = self.status.model_copy(
            update={
                "stream": self.trust.state,
                "stream_detail": self.trust.detail,
                "interval_ms": round(self.effective_interval() * 1000),
            }
        )
        self._publish()
        self._wake.set()

    # -- helpers ----------------------------------------------------------------------------------------------

    def _status(self, state: LinkState, **fields: Any) -> ConnectionStatus:
        last = getattr(self, "status", None)
        fields.setdefault("last_success_ms", last.last_success_ms if last is not None else None)
        return ConnectionStatus(
            state=state,
            endpoint=self.client.url,
            since_ms=self.clock.time_ms(),
            interval_ms=round(self.effective_interval() * 1000),
            stream=self.trust.state,
            stream_detail=self.trust.detail,
            **fields,
        )

    def _set(self, state: LinkState, **fields: Any) -> None:
        self.status = self._status(state, **fields)
        log.info("state %s %s", state.value, self.status.detail)
        self._publish()

    def _publish(self) -> None:
        """Emit the status if it says something the last one did not: each change of state is told once."""
        last = self._published
        if last is not None and last.model_copy(update={"since_ms": 0}) == self.status.model_copy(
            update={"since_ms": 0}
        ):
            return
        self._published = self.status
        self._emit(StatusEvent(self.status))

    async def _wait(self, seconds: float | None, event: asyncio.Event | None = None) -> None:
        """Sleep on the injected clock, or until the event (a control call, for polls) is set: whichever is first."""
        if event is None:
            event = self._wake
            event.clear()  # a wake-up asked before this wait was answered by the poll just made
        alarm = asyncio.create_task(self._ring(seconds, event), name="feed-alarm") if seconds is not None else None
        try:
            await event.wait()
        finally:
            if alarm is not None:
                alarm.cancel()

    async def _ring(self, seconds: float, event: asyncio.Event) -> None:
        await self.clock.sleep(seconds)
        event.set()

    async def _wait_until_server_time(self, at_ms: int) -> None:
        # A rate limit or the budget is a rule, not a preference: a key press does not cut it short.
        while (left := at_ms - self.client.server_time_ms()) > 0:
            await self.clock.sleep(left / 1000)


@dataclass(frozen=True)
class _Push:
    """An asset's last push: when it was sent (E) and when its change happened (T), and what it said."""

    event_time: int
    transaction_time: int
    change: BalanceChange
    received_at_ms: int
    reason: str

    def row(self, row: AssetBalance) -> AssetBalance:
        """``row`` with this push's wallet figures (absolute, as pushed) and its time."""
        return row.model_copy(
            update={
                "wallet_balance": self.change.wallet_balance,
                "cross_wallet_balance": self.change.cross_wallet_balance,
                "update_time_ms": self.transaction_time,
                "source": "push",
                "source_method": f"ACCOUNT_UPDATE {self.reason}".strip(),
                "received_at_ms": self.received_at_ms,
            }
        )


def _clamp(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, seconds))


def _credentials_hint(exc: CredentialsRejected) -> str:
    hints = {
        -2014: "the API key is malformed: check BINANCE_API_KEY",
        -2015: "the key is invalid or revoked, this IP is not whitelisted, or the key lacks futures read permission",
        -1022: "the signature was rejected: check the secret or private key belongs to this API key",
    }
    hint = hints.get(exc.code or 0, "check the API key and its permissions")
    return f"{because('credentials rejected', exc)} — {hint}"
