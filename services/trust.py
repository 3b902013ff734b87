"""Whether the user-data stream really delivers: trusted on evidence, never on an open socket's word.

PROTOCOL.md §6.4: an open stream with no events is what a quiet account looks like, and also what a wrong URL, a
filter that leaves an event out, or a dead key look like. The evidence that tells them apart is a poll. A stream is
*unproven* until it delivers an event or a reconcile poll finds nothing it missed; a poll that finds an asset changed
with no push for it makes the stream *silent* until it delivers again. Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

log = logging.getLogger("balance_tui.trust")

#: A change the exchange made this long before a poll answered, with no push for it, was missed: a push is sent as
#: the change happens, and takes milliseconds, so two seconds is generous. A younger change may have its push in
#: flight: it is checked again at the next poll rather than judged now.
GRACE_MS = 2_000

CONNECTED_STATES = ("unproven", "live", "silent")


@dataclass(frozen=True)
class Known:
    """What the pushes and polls so far say an asset's wallet is, and the exchange time of that word."""

    wallet: Decimal
    cross_wallet: Decimal
    update_time_ms: int


@dataclass(frozen=True)
class PolledRow:
    asset: str
    wallet: Decimal
    cross_wallet: Decimal
    update_time_ms: int


class StreamTrust:
    """The stream's state as the dashboard should believe it: off, connecting, reconnecting, unproven, live, silent."""

    def __init__(self, *, enabled: bool) -> None:
        self.state = "connecting" if enabled else "off"
        self.detail = ""
        self._connected_at_ms = 0
        self._known: dict[str, Known] = {}

    @property
    def trusted(self) -> bool:
        """Pushes can be relied on for wallet changes: polling may slow to a reconcile."""
        return self.state == "live"

    @property
    def connected(self) -> bool:
        return self.state in CONNECTED_STATES

    def link(self, state: str, server_now_ms: int, detail: str = "") -> bool:
        """The stream's socket went up (``live``) or down; returns whether the state shown changed."""
        before = (self.state, self.detail)
        if state == "live":
            # A new connection proves nothing yet, whatever the last one did.
            self.state, self.detail = "unproven", "the stream is open; nothing has shown yet that it delivers"
            self._connected_at_ms = server_now_ms
        else:
            self.state, self.detail = state, detail
        return (self.state, self.detail) != before

    def delivered(self) -> bool:
        """An event arrived: the stream delivers. Returns whether the state shown changed."""
        if not self.connected or self.state == "live":
            return False
        if self.state == "silent":
            log.info("the user-data stream delivers again: trusted")
        self.state, self.detail = "live", ""
        return True

    def pushed(self, asset: str, wallet: Decimal, cross_wallet: Decimal, event_time_ms: int) -> None:
        self._known[asset] = Known(wallet, cross_wallet, event_time_ms)

    def polled(self, rows: list[PolledRow], server_now_ms: int) -> bool:
        """Judge the stream by a poll's rows; returns whether the state shown changed."""
        missed: list[PolledRow] = []
        pending = False
        for row in rows:
            known = self._known.get(row.asset)
            if known is not None and row.update_time_ms < known.update_time_ms:
                continue  # the poll is older than a push we hold: it says nothing about the stream
            changed = known is not None and (known.wallet, known.cross_wallet) != (row.wallet, row.cross_wallet)
            if not changed or not self.connected or row.update_time_ms <= self._connected_at_ms:
                # Nothing to judge, or a change from before this stream was there to carry it.
                self._known[row.asset] = Known(row.wallet, row.cross_wallet, row.update_time_ms)
            elif server_now_ms - row.update_time_ms < GRACE_MS:
                pending = True  # its push may be on the way: keep the old word and look again next poll
            else:
                missed.append(row)
                self._known[row.asset] = Known(row.wallet, row.cross_wallet, row.update_time_ms)
        if not self.connected:
            return False
        if missed:
            return self._silent(missed)
        if self.state == "unproven" and not pending and server_now_ms - self._connected_at_ms >= GRACE_MS:
            self.state, self.detail = "live", ""
            log.info("the user-data stream is trusted: a reconcile found nothing it missed")
            return True
        return False

    def _silent(self, missed: list[PolledRow]) -> bool:
        changed = self.state != "silent"
        assets = ", ".join(row.asset for row in missed)
        self.state = "silent"
        self.detail = f"the stream missed a change to {assets} that a poll found: polling at the interval"
        if changed:
            log.warning(
                "the user-data stream is silent: a poll found %s changed with no push (exchange time %s)",
                assets,
                ", ".join(str(row.update_time_ms) for row in missed),
            )
        return changed
