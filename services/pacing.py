"""When the next poll is due, what it asks for, and how much of the IP's weight it may spend. Pure: times are given.

The calls of a refresh, chosen for the least weight that fills every column (docs/DECISIONS.md):

- a regular refresh is one ``v2/account.status``: wallet, cross wallet, cross uPnL, available, max withdraw and the
  account totals, in a reply that lists only the symbols in use;
- a full refresh — first, every ``full_every`` seconds, after a Multi-Assets switch, and when an asset appears whose
  margin flag is unknown — asks ``account.status`` (v1: the Multi-Assets flag) and ``account.balance`` (the only
  method whose rows always carry ``marginAvailable``);
- positions (``v2/account.position``) first, on each new connection (pushes may have been missed while it was down)
  and at most once a reconcile interval.

Each call is done once its reply is applied, whatever became of the others of its refresh: on a link that drops
after every few requests, what one connection did not answer the next is asked for.

With the user-data stream trusted, wallet changes arrive as pushes at no weight: polling drops to a reconcile every
``reconcile_every`` seconds, plus one shortly after each burst of pushes for what a push does not carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from services.weight import WeightBudget

MIN_INTERVAL = 0.5
MAX_INTERVAL = 300.0
STATUS, STATUS_V1, BALANCE, POSITIONS = "v2/account.status", "account.status", "account.balance", "v2/account.position"


#: The least gap between position polls that pushes ask for (a bot filling every second must not spend 5 weight a
#: second on them): the liquidation price of a changed position is at most this old, plus the reconcile's wait.
POSITIONS_AFTER_PUSH = 10.0


def clamp(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, seconds))


@dataclass
class Pacing:
    """The pace of one account's polls. ``now`` is always the monotonic clock's; ``connection`` the client's count of
    connections opened (a new one means positions may have been missed)."""

    interval: float = 2.0
    full_every: float = 600.0
    reconcile_every: float = 60.0
    push_debounce: float = 1.0
    budget: WeightBudget = field(default_factory=WeightBudget)
    _full_at: float | None = None
    _full_wanted: bool = True
    _positions_at: float | None = None
    _positions_connection: int = -1
    _positions_wanted: bool = False
    _reconcile_at: float | None = None
    _reconcile_asked_at: float | None = None
    _failed: set[str] = field(default_factory=set)  # calls whose last try failed: asked first next time

    # -- what a refresh asks for --------------------------------------------------------------------------------

    def full_due(self, now: float) -> bool:
        return self._full_wanted or self._full_at is None or now - self._full_at >= self.full_every

    def positions_due(self, now: float, connection: int) -> bool:
        return (
            self._positions_at is None
            or self._positions_connection != connection
            or now - self._positions_at >= self.reconcile_every
            # A pushed position change: its liquidation price and ADL come only with a poll, at most one a while.
            or (self._positions_wanted and now - self._positions_at >= POSITIONS_AFTER_PUSH)
        )

    def calls(self, now: float, connection: int, *, positions: bool = True) -> tuple[str, ...]:
        """The methods the next refresh asks, in the order they are sent."""
        wanted = (STATUS_V1, BALANCE) if self.full_due(now) else (STATUS,)
        calls = (*wanted, POSITIONS) if positions and self.positions_due(now, connection) else wanted
        # What failed last time goes first: a link that spoils every other reply would otherwise spoil the same
        # call of every refresh.
        return tuple(sorted(calls, key=lambda method: method not in self._failed))

    def failed(self, method: str) -> None:
        """A call's reply did not come (or made no sense): asked again with the next refresh, first."""
        self._failed.add(method)

    def answered(self, method: str, now: float, connection: int) -> None:
        """A call's reply was applied: it is not asked again until due."""
        self._failed.discard(method)
        if method == BALANCE:
            self._full_at, self._full_wanted = now, False
        elif method == POSITIONS:
            self._positions_at, self._positions_connection = now, connection
            self._positions_wanted = False

    def want_positions(self) -> None:
        """A push changed a position: its liquidation price and ADL quantile are wanted with a poll soon."""
        self._positions_wanted = True

    def want_full(self) -> None:
        """The margin flags (and the Multi-Assets mode) are wanted with the next refresh."""
        self._full_wanted = True

    def cost(self, calls: tuple[str, ...], weight_of: Callable[[str], int]) -> int:
        return sum(weight_of(method) for method in calls)

    # -- when -------------------------------------------------------------------------------------------------

    def effective_interval(self, *, relying: bool, busy: bool) -> float:
        """The wait between regular polls: the user's interval, slowed while pushes are relied on (the stream
        trusted and the marks fresh) and while the IP is busy."""
        interval = max(self.interval, self.reconcile_every) if relying else self.interval
        return interval * self.budget.slow_factor if busy else interval

    def next_poll_at(self, polled_at: float, *, relying: bool, busy: bool) -> float:
        """When the next poll is due after one at ``polled_at``: the regular one or a due reconcile, first."""
        due = polled_at + self.effective_interval(relying=relying, busy=busy)
        return min(due, self._reconcile_at) if self._reconcile_at is not None else due

    def reconcile(self, now: float) -> bool:
        """A push asks for a poll shortly (debounced: a burst of pushes is one poll); returns whether it is a new
        reconcile, one the poll loop must wake for."""
        self._reconcile_asked_at = now
        if self._reconcile_at is None:
            self._reconcile_at = now + self.push_debounce
            return True
        return False

    def polled(self, started: float) -> None:
        """A poll succeeded: it answers the reconciles asked before it was sent, not one asked while in flight."""
        asked = self._reconcile_asked_at
        if asked is not None and asked >= started:
            self._reconcile_at = asked + self.push_debounce
        else:
            self._reconcile_at = self._reconcile_asked_at = None

    # -- how much -------------------------------------------------------------------------------------------------

    def allowance(self, limit: int, *, streaming: bool, floor: int) -> int:
        """This app's weight per minute. Never below one refresh (``floor``): a budget of nothing would freeze it."""
        return max(floor, self.budget.allowance(limit, streaming=streaming))
