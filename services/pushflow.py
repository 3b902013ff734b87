"""Pushes into the account core (the feed's stream part): each user-data event applied as it comes, what it asks for
followed, and the stream's own ups and downs told to the account, which judges whether the stream delivers."""

from __future__ import annotations

from collections.abc import Callable

from services.account import AccountState, Outcome
from services.client import WsApiClient
from services.errors import CredentialsRejected
from services.events import FeedEvent, MarginCallEvent
from services.fills import OrderTradeUpdate
from services.models import AccountConfigUpdate, AccountUpdate, MarginCall
from services.stream import StreamState, UserDataStream


class PushFlow:
    """Reads the stream until cancelled: ``follow`` takes each event's outcome, ``paint`` is called after an event
    that changed what is shown, ``stream_changed`` when the stream's state changed."""

    def __init__(
        self,
        stream: UserDataStream,
        account: AccountState,
        client: WsApiClient,
        *,
        follow: Callable[[Outcome], None],
        emit: Callable[[FeedEvent], None],
        paint: Callable[[], None],
        stream_changed: Callable[[], None],
    ) -> None:
        self.stream = stream
        self.account = account
        self.client = client
        self._follow = follow
        self._emit = emit
        self._paint = paint
        self._stream_changed = stream_changed

    async def take(self) -> None:
        account, client = self.account, self.client
        try:
            async for item in self.stream.events():
                if isinstance(item, StreamState):
                    if account.stream_link(item.state, client.server_time_ms(), item.detail):
                        self._stream_changed()
                    continue
                if account.stream_delivered():
                    self._stream_changed()
                if isinstance(item, MarginCall):
                    self._emit(MarginCallEvent(item))
                    continue
                if isinstance(item, AccountUpdate):
                    outcome = account.account_update(item, received_at_ms=client.clock.time_ms())
                elif isinstance(item, AccountConfigUpdate):
                    outcome = account.config_update(item)
                elif isinstance(item, OrderTradeUpdate):
                    outcome = account.order_update(item)
                else:
                    continue  # listenKeyExpired: the stream itself acts on it
                self._follow(outcome)
                if outcome.changed:
                    self._paint()
        except CredentialsRejected:
            # The poll loop reports rejected credentials; the stream just stops.
            if account.stream_link("off", client.server_time_ms(), "credentials rejected"):
                self._stream_changed()
