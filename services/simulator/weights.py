"""The exchange's request weight: fixed one-minute windows per IP, 429 past the limit, escalating 418 bans."""

from __future__ import annotations

from services.simulator.core import MAX_BAN_MS, Core, Refusal, log


class WeightWindows(Core):
    """Counts every request's weight in the IP's fixed minute window, other programs' included."""

    def _init_weights(self, ban_after_429s: int) -> None:
        self.ban_after_429s = ban_after_429s
        self.others_per_window = 0  # weight "other programs on the IP" spend at the start of every window
        self.banned_until_ms = 0
        self.bans = 0
        self._windows: dict[int, int] = {}
        self._own: dict[int, int] = {}
        self._excess: dict[int, int] = {}

    def _window(self) -> int:
        return self.server_time_ms() // 60_000

    def weight_count(self) -> int:
        """The IP's request weight in the current window, other programs included."""
        return self._windows.get(self._window(), self.others_per_window)

    def own_weight(self, window: int | None = None) -> int:
        """Weight spent by clients of this simulator (not by "other programs") in a window."""
        return self._own.get(self._window() if window is None else window, 0)

    def spend_weight(self, weight: int) -> None:
        """Weight spent now by other programs on the same IP."""
        window = self._window()
        self._windows[window] = self.weight_count() + weight

    def _charge(self, weight: int) -> int:
        window = self._window()
        self._windows[window] = self.weight_count() + weight
        self._own[window] = self._own.get(window, 0) + weight
        for old in [w for w in self._windows if w < window - 60]:
            self._windows.pop(old, None)
            self._own.pop(old, None)
            self._excess.pop(old, None)
        return self._windows[window]

    def ban(self, seconds: float) -> None:
        """Ban the IP now for this long (418 on every request and on every handshake)."""
        self.banned_until_ms = self.server_time_ms() + round(seconds * 1000)
        self.bans += 1

    def _escalate(self) -> None:
        duration = min(MAX_BAN_MS, 120_000 * 2**self.bans)
        self.banned_until_ms = self.server_time_ms() + duration
        self.bans += 1
        log.warning("IP banned until %d", self.banned_until_ms)

    # -- HTTP side --------------------------------------------------------------------------------------------
    def _check_rate(self, count: int) -> None:
        now = self.server_time_ms()
        if now < self.banned_until_ms:
            raise Refusal(
                418,
                -1003,
                f"Way too many requests; IP(127.0.0.1) banned until {self.banned_until_ms}. "
                "Please use the websocket for live updates to avoid bans.",
            )
        if count > self.weight_limit:
            window = self._window()
            self._excess[window] = self._excess.get(window, 0) + 1
            if self._excess[window] > self.ban_after_429s:
                self._escalate()
                self._check_rate(count)
            raise Refusal(
                429,
                -1003,
                f"Too many requests; current limit of IP(127.0.0.1) is {self.weight_limit} requests per minute. "
                "Please use the websocket for live updates to avoid polling the API.",
            )
