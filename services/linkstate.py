"""The connection's state as the screen and ``watch`` say it: built in one place, told once per change, and every
failure of a poll turned into a state with its countdown here (never an exception into the app)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.errors import CredentialsRejected, ExchangeError, NetworkError, RateLimited, RequestRejected, because
from services.keyaudit import ALL_THREE, Rejection
from services.models import ConnectionStatus, LinkState

log = logging.getLogger("balance_tui.feed")

#: What -2014/-2015/-1022 leave a person to check (PROTOCOL.md §7).
CREDENTIAL_HINTS = {
    -2014: "the API key is malformed: check BINANCE_API_KEY",
    -2015: ALL_THREE,
    -1022: "the signature was rejected: check the secret or private key belongs to this API key",
}
#: Of several failures of one refresh, the one that decides what to do: a person must act, the exchange said wait,
#: the link is down, a reply made no sense, a request was refused.
SEVERITY = (CredentialsRejected, RateLimited, NetworkError, ExchangeError)


def worst(errors: list[ExchangeError]) -> ExchangeError:
    """The failure of a refresh that decides what the feed does next."""
    return min(errors, key=lambda e: next(i for i, kind in enumerate(SEVERITY) if isinstance(e, kind)))


def credentials_detail(exc: CredentialsRejected) -> str:
    hint = CREDENTIAL_HINTS.get(exc.code or 0, "check the API key and its permissions")
    return f"{because('credentials rejected', exc)} — {hint}"


@dataclass(frozen=True)
class Failure:
    """What a failed poll means for the link: the state to show, and how long to wait before trying again."""

    state: LinkState
    detail: str
    wait: float | None  # seconds; None: until a person acts (refresh)
    retry_at_server_ms: int | None = None  # a rate limit: until the exchange's time says


def classify(
    exc: ExchangeError,
    *,
    backoff: Callable[[], float],
    interval: float,
    base: float,
    rejection: Rejection | None = None,
) -> Failure:
    """A failure as a state: rejected credentials wait for a person, a rate limit for the exchange's time, a network
    failure for the client's reconnect backoff (so the countdown is the next real attempt), anything else backs off.
    ``rejection`` is a -2015 read with the key's audit: a Portfolio Margin account is its own state."""
    if isinstance(exc, CredentialsRejected):
        if rejection is not None and rejection.kind == "portfolio margin":
            return Failure(LinkState.UNSUPPORTED, rejection.text, None)
        if rejection is not None:
            detail = f"{because('credentials rejected', exc)} — {rejection.text}"
            return Failure(LinkState.CREDENTIALS_REJECTED, detail, None)
        return Failure(LinkState.CREDENTIALS_REJECTED, credentials_detail(exc), None)
    if isinstance(exc, RateLimited):
        state = LinkState.BANNED if exc.banned else LinkState.RATE_LIMITED
        return Failure(state, str(exc), 0.0, exc.retry_at_ms)
    if isinstance(exc, NetworkError):
        return Failure(LinkState.RECONNECTING, str(exc), max(exc.retry_in, base))
    delay = backoff()
    if isinstance(exc, RequestRejected):
        delay = max(delay, interval)
    return Failure(LinkState.ERROR, str(exc), delay)


class LinkStatus:
    """The current :class:`ConnectionStatus` and what has been told of it: each change of state is told once."""

    def __init__(self, now_ms: Callable[[], int], endpoint: str, emit: Callable[[ConnectionStatus], None]) -> None:
        self.now_ms = now_ms
        self.endpoint = endpoint
        self._emit = emit
        self.status = ConnectionStatus(
            state=LinkState.CONNECTING, endpoint=endpoint, since_ms=now_ms(), detail=f"connecting to {endpoint}"
        )
        self._told: ConnectionStatus | None = None

    def set(self, state: LinkState, **fields: Any) -> None:
        """A new state (with its facts): logged and told."""
        fields.setdefault("last_success_ms", self.status.last_success_ms)
        fields.setdefault("interval_ms", self.status.interval_ms)
        fields.setdefault("stream", self.status.stream)
        fields.setdefault("stream_detail", self.status.stream_detail)
        self.status = ConnectionStatus(state=state, endpoint=self.endpoint, since_ms=self.now_ms(), **fields)
        log.info("state %s %s", state.value, self.status.detail)
        self.publish()

    def update(self, *, quietly: bool = False, **fields: Any) -> None:
        """New facts for the same state; ``quietly``: not news for the state lines (a success time)."""
        self.status = self.status.model_copy(update=fields)
        if quietly:
            self._told = self.status
        else:
            self.publish()

    def publish(self) -> None:
        """Tell the status if it says something the last one told did not."""
        told = self._told
        if told is not None and told.model_copy(update={"since_ms": 0}) == self.status.model_copy(
            update={"since_ms": 0}
        ):
            return
        self._told = self.status
        self._emit(self.status)

    def told(self) -> None:
        """The current status has been told (the first of a feed's events)."""
        self._told = self.status
