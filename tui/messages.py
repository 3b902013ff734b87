"""What the dashboard's worker tells the screen: each of the feed's events as a message, and the alerts it raised.

The worker applies every event to the account's session first (services/session.py): a message says what is new,
the session holds what it adds up to (the tape, the series, the alerts holding).
"""

from __future__ import annotations

from textual.message import Message

from services.alerts import AlertEvent
from services.events import BalanceChangeEvent, FeedEvent, KeyAuditEvent, MarginCallEvent, SnapshotEvent, TradeEvent
from services.fills import Trade
from services.keyaudit import KeyAudit
from services.models import AccountSnapshot, Change, ConnectionStatus, MarginCall


class SnapshotReceived(Message):
    """A new snapshot from the feed. A newer one replaces it in the queue: bursts collapse to the latest."""

    def __init__(self, snapshot: AccountSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReceived)


class ChangeReceived(Message):
    """A balance changed (pushed with its reason, or found by a poll)."""

    def __init__(self, change: Change) -> None:
        super().__init__()
        self.change = change


class TradeReceived(Message):
    """A fill: its realized PnL and commission (today's figures by reason)."""

    def __init__(self, trade: Trade) -> None:
        super().__init__()
        self.trade = trade


class MarginCallReceived(Message):
    """The exchange sent a MARGIN_CALL."""

    def __init__(self, margin_call: MarginCall) -> None:
        super().__init__()
        self.margin_call = margin_call


class StatusChanged(Message):
    """The connection's state changed."""

    def __init__(self, status: ConnectionStatus) -> None:
        super().__init__()
        self.status = status


class KeyAudited(Message):
    """What the key may do was checked (or could not be)."""

    def __init__(self, audit: KeyAudit) -> None:
        super().__init__()
        self.audit = audit


class AlertsRaised(Message):
    """Alerts fired or resolved."""

    def __init__(self, events: list[AlertEvent]) -> None:
        super().__init__()
        self.events = events


def message_for(event: FeedEvent) -> Message:
    """The message that tells the screen of one of the feed's events."""
    if isinstance(event, BalanceChangeEvent):
        return ChangeReceived(event.change)
    if isinstance(event, SnapshotEvent):
        return SnapshotReceived(event.snapshot)
    if isinstance(event, MarginCallEvent):
        return MarginCallReceived(event.margin_call)
    if isinstance(event, TradeEvent):
        return TradeReceived(event.trade)
    if isinstance(event, KeyAuditEvent):
        return KeyAudited(event.audit)
    return StatusChanged(event.status)
