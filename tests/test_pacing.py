"""The pace of polls, pure: what a refresh asks for, when it is due, reconciles not lost. Plain asserts, no sockets."""

from __future__ import annotations

from services.pacing import BALANCE, POSITIONS, STATUS, STATUS_V1, Pacing


def test_a_reconcile_asked_for_during_a_poll_is_not_lost() -> None:
    """A push that asks for a reconcile while a poll is in flight gets its own poll: the one in flight predates it."""
    pacing = Pacing(push_debounce=1.0)
    pacing.polled(0.0)  # the first poll answered what was asked before it
    started = 0.0
    assert pacing.reconcile(0.5)  # a push arrives while the poll that started at `started` is in flight
    pacing.polled(started)
    assert pacing.next_poll_at(0.0, relying=True, busy=False) == 1.5  # still due: asked after the poll was sent
    pacing.polled(1.0)
    assert pacing.next_poll_at(1.0, relying=True, busy=False) == 1.0 + 60.0  # answered: the reconcile pace again


def test_each_call_is_asked_until_its_reply_is_in_whatever_became_of_the_others() -> None:
    """On a link that drops after a few requests, what one connection did not answer the next is asked for."""
    pacing = Pacing()
    assert pacing.calls(0.0, connection=1) == (STATUS_V1, BALANCE, POSITIONS)
    pacing.answered(STATUS_V1, 0.0, 1)  # the status came; the connection dropped before the rest
    assert pacing.calls(1.0, connection=2) == (STATUS_V1, BALANCE, POSITIONS)
    pacing.answered(STATUS_V1, 1.0, 2)
    pacing.answered(BALANCE, 1.0, 2)
    assert pacing.calls(2.0, connection=3) == (STATUS, POSITIONS)
    pacing.answered(POSITIONS, 2.0, 3)
    assert pacing.calls(3.0, connection=3) == (STATUS,)
    assert pacing.calls(4.0, connection=4) == (STATUS, POSITIONS)  # a new connection: pushes may have been missed
    pacing.want_full()  # an asset appeared whose margin flag is not known
    assert pacing.calls(4.0, connection=4)[:2] == (STATUS_V1, BALANCE)


def test_the_pace_slows_for_a_trusted_stream_and_a_busy_ip() -> None:
    pacing = Pacing(interval=2.0, reconcile_every=60.0)
    assert pacing.effective_interval(relying=False, busy=False) == 2.0
    assert pacing.effective_interval(relying=True, busy=False) == 60.0
    assert pacing.effective_interval(relying=False, busy=True) == 8.0


def test_a_pushed_position_change_asks_for_positions_at_most_once_a_while() -> None:
    """A fill changes a position's liquidation price, which only a poll says: asked for with the next poll, but a
    bot filling every second does not make every reconcile cost positions too."""
    pacing = Pacing()
    pacing.answered(STATUS_V1, 0.0, 1)
    pacing.answered(BALANCE, 0.0, 1)
    pacing.answered(POSITIONS, 0.0, 1)
    pacing.want_positions()
    assert pacing.calls(3.0, connection=1) == (STATUS,)  # 3 s after the last: not yet
    assert pacing.calls(10.0, connection=1) == (STATUS, POSITIONS)
    pacing.answered(POSITIONS, 10.0, 1)
    assert pacing.calls(25.0, connection=1) == (STATUS,)  # answered: the regular minute again
