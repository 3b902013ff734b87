"""The exchange's request weight: what each method costs, fixed one-minute windows per IP, 429 past the limit,
escalating 418 bans (PROTOCOL.md §5)."""

from __future__ import annotations

from services.simulator.core import MAX_BAN_MS, V1_METHODS, WEIGHTS, Refusal, Venue, log


class IpWeight:
    """Counts every request's weight in the IP's fixed minute window, other programs' included."""

    def __init__(self, venue: Venue, *, limit: int, ban_after_429s: int, v1_weight: int) -> None:
        self._venue = venue
        self.limit = limit
        self.ban_after_429s = ban_after_429s
        self.costs = dict(WEIGHTS)  # what each method is charged: set_v1_weight() for the contested ones
        self.set_v1_weight(v1_weight)
        self.others_per_window = 0  # weight "other programs on the IP" spend at the start of every window
        self.banned_until_ms = 0
        self.bans = 0
        self._windows: dict[int, int] = {}
        self._own: dict[int, int] = {}
        self._excess: dict[int, int] = {}

    def set_v1_weight(self, weight: int) -> None:
        """Charge the v1 account methods this (10 as the change log says, or 5 as their pages do)."""
        for method in V1_METHODS:
            self.costs[method] = weight

    def window(self) -> int:
        """The current minute window's number (server time)."""
        return self._venue.server_time_ms() // 60_000

    def count(self) -> int:
        """The IP's request weight in the current window, other programs included."""
        return self._windows.get(self.window(), self.others_per_window)

    def own(self, window: int | None = None) -> int:
        """Weight spent by clients of this simulator (not by "other programs") in a window."""
        return self._own.get(self.window() if window is None else window, 0)

    def spend(self, weight: int) -> None:
        """Weight spent now by other programs on the same IP."""
        self._windows[self.window()] = self.count() + weight

    def charge(self, weight: int) -> int:
        """Charge a client's request (or handshake) this weight; returns the window's count after it."""
        window = self.window()
        self._windows[window] = self.count() + weight
        self._own[window] = self._own.get(window, 0) + weight
        for old in [w for w in self._windows if w < window - 60]:
            self._windows.pop(old, None)
            self._own.pop(old, None)
            self._excess.pop(old, None)
        return self._windows[window]

    def charge_method(self, method: str) -> int:
        return self.charge(self.costs.get(method, 1))

    def banned(self) -> bool:
        return self._venue.server_time_ms() < self.banned_until_ms

    def ban(self, seconds: float) -> None:
        """Ban the IP now for this long (418 on every request and on every handshake)."""
        self.banned_until_ms = self._venue.server_time_ms() + round(seconds * 1000)
        self.bans += 1

    def unban(self) -> None:
        self.banned_until_ms = 0

    def _escalate(self) -> None:
        duration = min(MAX_BAN_MS, 120_000 * 2**self.bans)
        self.banned_until_ms = self._venue.server_time_ms() + duration
        self.bans += 1
        log.warning("IP banned until %d", self.banned_until_ms)

    def check(self, count: int) -> None:
        """Refuse the request at hand when the IP is banned (418) or its window is over the limit (429, and past
        ``ban_after_429s`` of them in a window, an escalating ban)."""
        if self.banned():
            raise Refusal(
                418,
                -1003,
                f"Way too many requests; IP(127.0.0.1) banned until {self.banned_until_ms}. "
                "Please use the websocket for live updates to avoid bans.",
            )
        if count > self.limit:
            window = self.window()
            self._excess[window] = self._excess.get(window, 0) + 1
            if self._excess[window] > self.ban_after_429s:
                self._escalate()
                self.check(count)
            raise Refusal(
                429,
                -1003,
                f"Too many requests; current limit of IP(127.0.0.1) is {self.limit} requests per minute. "
                "Please use the websocket for live updates to avoid polling the API.",
            )
