"""Whether the numbers shown are current: the one definition, read by the status line, the table's STALE frame, the
built-in ``stale`` alert, the rules' "on stale data" and ``watch``. Pure: no I/O, no clock of its own.

- **current**: new numbers came within the planned pace. With the push stream live (proven), polls come once a
  reconcile interval (60 s) and the numbers between are current: a quiet account with a live stream is not stale.
- **stale**: ``MISSES`` planned refreshes went by with no new numbers (3 × the pace: 6 s polling every 2 s, 3 minutes
  with the stream live). A pause by choice is not stale.
- **behind**: stale, or the link is down (reconnecting, rate-limited, rejected, failing): the numbers may have moved.
- **marks stale**: positions are held and a mark older than ``MARK_MAX_AGE_MS`` stands for one: the figures computed
  from marks fall back to the last poll's.

The built-in ``stale`` alert reads the same moment as the screen's STALE and waits ``STALE_ALERT_AFTER_MS`` more,
so that a trader is called only when the screen has said STALE for that long.
"""

from __future__ import annotations

from services.models import AccountSnapshot, ConnectionStatus, LinkState

MISSES = 3  # planned refreshes gone by without new numbers before they are stale
MIN_PACE_MS = 500  # the shortest pace counted, whatever the interval says
STALE_ALERT_AFTER_MS = 30_000  # the built-in alert: stale for this long
MARK_MAX_AGE_MS = 3_000  # a mark older than this no longer stands for the market (marks come every second)

#: Link states in which the numbers keep coming (or were stopped by choice).
FLOWING = (LinkState.LIVE, LinkState.PAUSED)
#: ... and the first connection's, before it is said LIVE: numbers that come then are that moment's first poll.
NOT_DOWN = (*FLOWING, LinkState.CONNECTING)


def stale_at_ms(status: ConnectionStatus, snapshot: AccountSnapshot) -> int:
    """The moment this snapshot's numbers turn stale: ``MISSES`` refreshes, at the pace the link said, after them."""
    return snapshot.received_at_ms + MISSES * max(status.interval_ms, MIN_PACE_MS) + 1


def is_stale(status: ConnectionStatus | None, snapshot: AccountSnapshot | None, now_ms: int) -> bool:
    """No new numbers for ``MISSES`` planned refreshes (a pause by choice is not stale; nothing yet is not stale)."""
    if snapshot is None or status is None or status.state is LinkState.PAUSED:
        return False
    return now_ms >= stale_at_ms(status, snapshot)


def is_behind(status: ConnectionStatus | None, snapshot: AccountSnapshot | None, now_ms: int) -> bool:
    """Stale, or the link is down: the numbers on screen may no longer be the exchange's."""
    if is_stale(status, snapshot, now_ms):
        return True
    return snapshot is not None and status is not None and status.state not in NOT_DOWN


def is_current(
    status: ConnectionStatus | None, snapshot: AccountSnapshot | None, now_ms: int, *, from_marks: bool = False
) -> bool:
    """Whether a figure of this snapshot is the exchange's as of now: the link not down, the numbers not stale, and
    (for a figure computed from marks) the marks not stale. The inverse of :func:`is_behind`, and of marks stopped."""
    if snapshot is None or status is None or status.state not in NOT_DOWN:
        return False
    if from_marks and snapshot.marks_stale:
        return False
    return not is_stale(status, snapshot, now_ms)


def stale_alert_at_ms(status: ConnectionStatus, snapshot: AccountSnapshot) -> int:
    """When the built-in ``stale`` alert holds: the screen has said STALE for ``STALE_ALERT_AFTER_MS``."""
    return stale_at_ms(status, snapshot) + STALE_ALERT_AFTER_MS


def mark_is_fresh(mark_time_ms: int, now_ms: int) -> bool:
    """A mark young enough to stand for the market (on the exchange's clock, as marks are stamped)."""
    return now_ms - mark_time_ms <= MARK_MAX_AGE_MS
