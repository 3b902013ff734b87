"""The account feed: polls the exchange through a :class:`~services.wsapi.WsApiClient` and yields what changed.

It yields two kinds of event: a new :class:`AccountSnapshot`, and a change of the connection's
:class:`ConnectionStatus`. A poll starts only when the previous one has ended, so requests never pile up, and every
failure becomes a state with a countdown rather than an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from services.backoff import Backoff
from services.clock import Clock
from services.errors import (
    CredentialsRejected,
    ExchangeError,
    NetworkError,
    RateLimited,
    RequestRejected,
)
from services.models import AccountSnapshot, AssetBalance, ConnectionStatus, LinkState
from services.wsapi import WsApiClient

log = logging.getLogger("balance_tui.feed")

MIN_INTERVAL = 0.5
MAX_INTERVAL = 300.0


@dataclass(frozen=True)
class SnapshotEvent:
    """A new snapshot of the account."""

    snapshot: AccountSnapshot


@dataclass(frozen=True)
class StatusEvent:
    """The connection's state changed."""

    status: ConnectionStatus


FeedEvent = SnapshotEvent | StatusEvent


class AccountFeed:
    """Polls balances on an interval; controllable (refresh now, pause, interval) while it runs.

    Each poll is one ``v2/account.status`` (weight 5): it carries every column of the table — wallet, cross wallet,
    cross uPnL, available, max withdraw, the margin flag — and the account totals, in a reply that lists only the
    symbols in use. ``account.balance`` would cost the same weight and miss the totals. The v1 ``account.status``
    (same weight, but a reply listing every symbol of the market) is asked on each new connection and every
    ``full_every`` seconds, for the one thing v2 lacks: the Multi-Assets flag.
    """

    def __init__(
        self,
        client: WsApiClient,
        *,
        interval: float = 2.0,
        full_every: float = 600.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.clock: Clock = client.clock
        self._interval = _clamp(interval)
        self.full_every = full_every
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.paused = False
        self.status = self._status(LinkState.CONNECTING, detail=f"connecting to {client.url}")
        self.last_snapshot: AccountSnapshot | None = None
        self._wake = asyncio.Event()
        self._multi_assets: bool | None = None
        self._full_at: float | None = None
        self._full_connection = -1

    # -- control ----------------------------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        return self._interval

    def set_interval(self, seconds: float) -> float:
        """Change the poll interval (clamped to 0.5 s … 5 min); takes effect at once."""
        self._interval = _clamp(seconds)
        self._wake.set()
        return self._interval

    def refresh_now(self) -> None:
        """Poll now, and retry now whatever the feed was waiting for (except a rate limit's reset)."""
        self.paused = False
        self._wake.set()

    def pause(self) -> None:
        self.paused = True
        self._wake.set()

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    # -- one poll ---------------------------------------------------------------------------------------------

    async def refresh(self) -> AccountSnapshot:
        """Poll once and return the new snapshot; raises the client's typed errors."""
        client = self.client
        if client.connected is False:
            await client.connect()
        now = self.clock.monotonic()
        full = (
            self._multi_assets is None
            or self._full_connection != client.connections_opened
            or self._full_at is None
            or now - self._full_at >= self.full_every
        )
        status = await client.account_status(v2=not full)
        method = "account.status" if full else "v2/account.status"
        if full:
            self._multi_assets = status.multi_assets_margin
            self._full_at = now
            self._full_connection = client.connections_opened
        received = self.clock.time_ms()
        snapshot = AccountSnapshot(
            balances={
                row.asset: AssetBalance.from_status(row, method=method, received_at_ms=received)
                for row in status.assets
            },
            totals=status.totals(),
            multi_assets_margin=self._multi_assets,
            weight=client.weight,
            server_time_ms=client.server_time_ms(),
            received_at_ms=received,
            rtt_ms=client.last_rtt_ms,
            clock_offset_ms=client.clock_offset_ms,
        )
        self.last_snapshot = snapshot
        return snapshot

    # -- the loop ---------------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Poll until cancelled, yielding each snapshot and each change of state."""
        yield StatusEvent(self.status)
        while True:
            if self.paused:
                if self.status.state is not LinkState.PAUSED:
                    yield self._set(LinkState.PAUSED, detail="paused: press the refresh or pause key to resume")
                await self._wait(None)
                continue
            try:
                snapshot = await self.refresh()
            except CredentialsRejected as exc:
                # Retrying cannot help until a person acts: wait for an explicit refresh (no retry storm).
                yield self._set(LinkState.CREDENTIALS_REJECTED, detail=_credentials_hint(exc))
                await self._wait(None)
                continue
            except RateLimited as exc:
                state = LinkState.BANNED if exc.banned else LinkState.RATE_LIMITED
                yield self._set(state, detail=str(exc), retry_at_ms=exc.retry_at_ms)
                await self._wait_until_server_time(exc.retry_at_ms)
                continue
            except ExchangeError as exc:
                delay = max(self.backoff.next_delay(), exc.retry_in if isinstance(exc, NetworkError) else 0.0)
                state = LinkState.RECONNECTING if isinstance(exc, NetworkError) else LinkState.ERROR
                if isinstance(exc, RequestRejected):
                    delay = max(delay, self._interval)
                yield self._set(
                    state,
                    detail=str(exc),
                    retry_at_ms=self.clock.time_ms() + round(delay * 1000),
                    attempt=self.backoff.attempt,
                )
                await self._wait(delay)
                continue
            self.backoff.reset()
            if self.status.state is not LinkState.LIVE:
                yield self._set(LinkState.LIVE, last_success_ms=snapshot.received_at_ms)
            else:
                self.status = self.status.model_copy(update={"last_success_ms": snapshot.received_at_ms})
            yield SnapshotEvent(snapshot)
            await self._wait(self._interval)

    def _status(self, state: LinkState, **fields: Any) -> ConnectionStatus:
        last = getattr(self, "status", None)
        fields.setdefault("last_success_ms", last.last_success_ms if last is not None else None)
        return ConnectionStatus(
            state=state,
            endpoint=self.client.url,
            since_ms=self.clock.time_ms(),
            interval_ms=round(self._interval * 1000),
            **fields,
        )

    def _set(self, state: LinkState, **fields: Any) -> StatusEvent:
        self.status = self._status(state, **fields)
        log.info("state %s %s", state.value, self.status.detail)
        return StatusEvent(self.status)

    async def _wait(self, seconds: float | None) -> None:
        """Sleep on the injected clock, or until a control call wakes the feed."""
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds)) if seconds is not None else None
        try:
            await asyncio.wait([t for t in (waiter, sleeper) if t is not None], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _wait_until_server_time(self, at_ms: int) -> None:
        # A rate limit is the exchange's rule, not ours: a key press does not cut it short.
        while (left := at_ms - self.client.server_time_ms()) > 0:
            await self.clock.sleep(left / 1000)


def _clamp(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, seconds))


def _credentials_hint(exc: CredentialsRejected) -> str:
    hints = {
        -2014: "the API key is malformed: check BINANCE_API_KEY",
        -2015: "the key is invalid or revoked, this IP is not whitelisted, or the key lacks futures read permission",
        -1022: "the signature was rejected: check the secret or private key belongs to this API key",
    }
    hint = hints.get(exc.code or 0, "check the API key and its permissions")
    return f"credentials rejected: {exc} — {hint}"
