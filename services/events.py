"""What a feed tells its consumers: a snapshot, a state of the link, a margin call, a balance change, a fill, the key."""

from __future__ import annotations

from dataclasses import dataclass

from services.fills import Trade
from services.keyaudit import KeyAudit
from services.models import AccountSnapshot, Change, ConnectionStatus, MarginCall


@dataclass(frozen=True)
class SnapshotEvent:
    """A new snapshot of the account."""

    snapshot: AccountSnapshot


@dataclass(frozen=True)
class StatusEvent:
    """The connection's state changed."""

    status: ConnectionStatus


@dataclass(frozen=True)
class MarginCallEvent:
    """The exchange sent a MARGIN_CALL: positions are close to liquidation."""

    margin_call: MarginCall


@dataclass(frozen=True)
class BalanceChangeEvent:
    """An asset's wallet changed: pushed with its reason, or found by a poll with none (for the history)."""

    change: Change


@dataclass(frozen=True)
class TradeEvent:
    """A fill: its realized PnL and commission (the wallets it moved come as a balance change)."""

    trade: Trade


@dataclass(frozen=True)
class KeyAuditEvent:
    """What the key may do, checked (at start, every few hours, and after a -2015), or why it is not known."""

    audit: KeyAudit


FeedEvent = SnapshotEvent | StatusEvent | MarginCallEvent | BalanceChangeEvent | TradeEvent | KeyAuditEvent
