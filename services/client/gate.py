"""The 429/418 gate: once the exchange says to wait, nothing is sent and no connection opened before it said.

The first 429 stops the client; a second could get the IP banned (PROTOCOL.md §5).
"""

from __future__ import annotations

import logging

from services.errors import RATE_LIMIT_CODE, RateLimited

log = logging.getLogger("balance_tui.client")

#: However soon a 429 says to come back, the client waits at least this long.
MIN_WAIT_MS = 1_000


class Gate:
    def __init__(self) -> None:
        self.blocked_until_ms = 0
        self.banned = False

    def check(self, now_ms: int) -> None:
        """Raise :class:`RateLimited` while the exchange's last word says to wait."""
        if self.blocked_until_ms and now_ms < self.blocked_until_ms:
            raise RateLimited(
                "waiting for the exchange's rate limit to reset",
                status=418 if self.banned else 429,
                code=RATE_LIMIT_CODE,
                retry_at_ms=self.blocked_until_ms,
                banned=self.banned,
            )

    def block(self, limited: RateLimited, now_ms: int) -> RateLimited:
        """Close the gate until the limit says (a second or more); returns the error to raise, with that time."""
        self.blocked_until_ms = max(self.blocked_until_ms, limited.retry_at_ms, now_ms + MIN_WAIT_MS)
        self.banned = limited.banned
        log.warning("rate limited (%s): nothing sent until %d", limited.status, self.blocked_until_ms)
        return RateLimited(
            limited.message,
            status=limited.status or 429,
            code=limited.code,
            retry_at_ms=self.blocked_until_ms,
            banned=self.banned,
        )
