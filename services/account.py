"""One account, in one place: every fact the exchange gives about it goes in, one immutable snapshot comes out.

Pure: no I/O, no clock of its own, no asyncio. Each reply is a fact on its own and is applied the moment it arrives
(a refresh whose fourth call failed used to throw away the three that had been answered): ``account.status`` and
``account.balance`` bring balances, the first with the totals; ``v2/account.position`` brings positions; a push
brings wallets and positions; marks move what the positions make. What a reply did not bring keeps its age.

Each event returns an :class:`Outcome`: the balance changes it revealed (for the history and the tape) and what the
account wants next (a reconcile poll for what a push does not carry, a full refresh for a margin flag not known, the
marks of the symbols now held). Whether the user-data stream really delivers is judged here too, on the evidence of
polls beside pushes (:mod:`services.trust`), since that evidence is the account's own rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from services.book import PositionBook, Sums
from services.fills import OrderTradeUpdate, Trade
from services.models import (
    AccountConfigUpdate,
    AccountSnapshot,
    AccountStatus,
    AccountTotals,
    AccountUpdate,
    AccountUpdateData,
    AssetBalance,
    BalanceChange,
    BalanceRow,
    Change,
    WeightReading,
)
from services.positions import MarkPrice, Position
from services.trust import PolledRow, StreamTrust

log = logging.getLogger("balance_tui.account")


@dataclass(frozen=True)
class Reply:
    """The facts of the reply that carried a poll's result: which method, its weight reading and round trip, when it
    was asked and answered (on the exchange's clock, as marks and pushes are stamped) and received (the machine's)."""

    method: str
    asked_at_ms: int
    answered_at_ms: int
    received_at_ms: int
    weight: WeightReading | None = None
    rtt_ms: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What an event did to the account, and what the account wants next."""

    changed: bool = False  # the snapshot reads differently
    changes: tuple[Change, ...] = ()  # wallets that moved: pushed with their reason, or found by a poll
    trades: tuple[Trade, ...] = ()  # fills: how much of an ORDER change was realized PnL and how much commission
    reconcile: bool = False  # a poll soon: a push does not carry available, max withdraw or uPnL
    full_refresh: bool = False  # the margin flags (and the Multi-Assets mode) are wanted
    follow_marks: bool = False  # the symbols held changed
    positions_wanted: bool = False  # a pushed position change: its liquidation price and ADL come with a poll
    stream_changed: bool = False  # the stream's trust changed: the pace of polling and the state lines follow


@dataclass(frozen=True)
class _Push:
    """An asset's last push: when it was sent (E) and when its change happened (T), and what it said."""

    event_time: int
    transaction_time: int
    change: BalanceChange
    received_at_ms: int
    reason: str

    def row(self, row: AssetBalance) -> AssetBalance:
        """``row`` with this push's wallet figures (absolute, as pushed) and its time."""
        return row.model_copy(
            update={
                "wallet_balance": self.change.wallet_balance,
                "cross_wallet_balance": self.change.cross_wallet_balance,
                "update_time_ms": self.transaction_time,
                "source": "push",
                "source_method": f"ACCOUNT_UPDATE {self.reason}".strip(),
                "received_at_ms": self.received_at_ms,
            }
        )


class AccountState:
    """The state of one account. Feed it events; :meth:`snapshot` says what to show at a moment."""

    def __init__(self, *, stream: bool = False) -> None:
        self.trust = StreamTrust(enabled=stream)
        self.positions = PositionBook()
        self.multi_assets: bool | None = None
        self._rows: dict[str, AssetBalance] = {}  # the exchange's latest word on each asset, pushes applied
        self._pushed: dict[str, _Push] = {}  # per asset, the last push a poll has not yet caught up with
        self._flags: dict[str, bool] = {}  # margin flags as account.balance last gave them
        self._totals: AccountTotals | None = None
        self._at_poll: Sums | None = None  # what was estimated when the totals were polled (marks move them from)
        self._weight: WeightReading | None = None
        self._rtt_ms: int | None = None
        self._received_at_ms = 0
        self._cause = "poll"

    # -- what is known ------------------------------------------------------------------------------------------

    @property
    def polled(self) -> bool:
        """Balances have come from a poll at least once (pushes alone do not make a snapshot)."""
        return bool(self._rows) or self._totals is not None

    @property
    def weight(self) -> WeightReading | None:
        """The latest weight reading of this account's replies."""
        return self._weight

    def knows_flag(self, asset: str) -> bool:
        row = self._rows.get(asset)
        return asset in self._flags or (row is not None and row.margin_available is not None)

    # -- polls --------------------------------------------------------------------------------------------------

    def status_polled(self, status: AccountStatus, reply: Reply) -> Outcome:
        """``account.status`` (v1: with the Multi-Assets flag) or ``v2/account.status``: balances and the totals."""
        if status.multi_assets_margin is not None:
            self.multi_assets = status.multi_assets_margin
        rows = [AssetBalance.from_status(r, method=reply.method, received_at_ms=reply.received_at_ms)
                for r in status.assets]  # fmt: skip
        outcome = self._rows_polled(rows, reply)
        self._totals = status.totals()
        self._rebase(reply)
        return outcome

    def balance_polled(self, rows: list[BalanceRow], reply: Reply) -> Outcome:
        """``account.balance``: every column and the margin flag of every asset (the only method that always says
        it), but no totals."""
        self._flags = {row.asset: row.margin_available for row in rows if row.margin_available is not None}
        balances = [AssetBalance.from_balance(r, method=reply.method, received_at_ms=reply.received_at_ms)
                    for r in rows]  # fmt: skip
        return self._rows_polled(balances, reply)

    def positions_polled(self, positions: list[Position], reply: Reply) -> Outcome:
        """``v2/account.position``: every open position, stamped with the moment it was asked (the exchange's figures
        are of some moment between asking and answer: a mark from after the asking is as new, and is used)."""
        before = self.positions.held_symbols()
        self.positions.positions_polled(positions, reply.asked_at_ms)
        self._reading(reply)
        self._rebase(reply)
        return Outcome(changed=self.polled, follow_marks=self.positions.held_symbols() != before)

    def _rows_polled(self, rows: list[AssetBalance], reply: Reply) -> Outcome:
        self._drift(rows, reply)
        self._reading(reply)
        self._received_at_ms = reply.received_at_ms
        self._rtt_ms = reply.rtt_ms
        self._cause = "poll"
        stream_changed = self.trust.polled(
            [PolledRow(r.asset, r.wallet_balance, r.cross_wallet_balance, r.update_time_ms) for r in rows],
            reply.answered_at_ms,
        )
        changes: list[Change] = []
        for polled in rows:
            row = self._with_newer_push(polled)
            old = self._rows.get(row.asset)
            if old is not None and row.source == "poll" and old.wallet_balance != row.wallet_balance:
                # A wallet a poll finds changed with no push for it: recorded too, with no reason the exchange gave.
                at = row.update_time_ms or reply.received_at_ms
                delta = row.wallet_balance - old.wallet_balance
                changes.append(Change(at, row.asset, old.wallet_balance, row.wallet_balance, delta, "UNKNOWN",
                                      None, "poll"))  # fmt: skip
            self._rows[row.asset] = row
        wanted = any(not self.knows_flag(r.asset) for r in rows)  # an asset new to us: its flag comes in full
        return Outcome(changed=True, changes=tuple(changes), full_refresh=wanted, stream_changed=stream_changed)

    def _with_newer_push(self, polled: AssetBalance) -> AssetBalance:
        """A poll older than the last push for an asset must not undo the push's wallet figures.

        A poll's ``updateTime`` is the time of the asset's last transaction, which a push carries as ``T`` (its
        ``E``, the event's time, is a few ms later): they are compared with each other."""
        pushed = self._pushed.get(polled.asset)
        if pushed is None:
            return polled
        if polled.update_time_ms >= pushed.transaction_time:
            del self._pushed[polled.asset]  # the poll has caught up
            return polled
        return pushed.row(polled)

    def _reading(self, reply: Reply) -> None:
        weight = reply.weight
        if weight is not None and (
            self._weight is None
            or (weight.server_time_ms, weight.count) >= (self._weight.server_time_ms, self._weight.count)
        ):
            self._weight = weight

    def _rebase(self, reply: Reply) -> None:
        """The exchange's totals are of this moment: what the book estimates now is what later changes are measured
        from (the totals of a later moment are the exchange's plus the change since)."""
        base = self._base()
        if base is not None:
            self._at_poll = self.positions.sums(base, reply.asked_at_ms)

    def _drift(self, rows: list[AssetBalance], reply: Reply) -> None:
        """The exchange's new figures beside what marks had made of them: how far the estimate had drifted."""
        shown = self.snapshot(reply.asked_at_ms)
        if shown is None:
            return
        polled = {r.asset: r for r in rows}
        for asset, row in shown.balances.items():
            exchange = polled.get(asset)
            if row.upnl_source == "mark" and exchange is not None and exchange.cross_un_pnl != row.cross_un_pnl:
                log.info("drift %s cross uPnL: computed %s, exchange %s (%+f)", asset, row.cross_un_pnl,
                         exchange.cross_un_pnl, exchange.cross_un_pnl - row.cross_un_pnl)  # fmt: skip

    # -- pushes -------------------------------------------------------------------------------------------------

    def account_update(self, event: AccountUpdate, *, received_at_ms: int) -> Outcome:
        """``ACCOUNT_UPDATE``: absolute ``wb``/``cw`` for the assets listed, positions that changed."""
        happened = event.transaction_time or event.event_time  # to compare with a poll's updateTime
        changes: list[Change] = []
        moved: list[str] = []
        for change in event.data.balances:
            if self._older(change.asset, event, happened):
                log.info("ignored an older ACCOUNT_UPDATE for %s (E=%d)", change.asset, event.event_time)
                continue
            last = self._pushed.get(change.asset)
            row = self._rows.get(change.asset)
            old = last.change.wallet_balance if last else (row.wallet_balance if row else None)
            if old != change.wallet_balance:
                changes.append(_pushed_change(change, old, happened, event.data))
            push = _Push(event.event_time, happened, change, received_at_ms, event.data.reason)
            self._pushed[change.asset] = push
            self.trust.pushed(change.asset, change.wallet_balance, change.cross_wallet_balance, happened)
            if row is not None:
                self._rows[change.asset] = push.row(row)
            moved.append(change.asset)  # an asset new to us, too: it arrives with the next poll
        follow = False
        if event.data.positions:
            before = self.positions.held_symbols()
            self.positions.positions_pushed(event.data.positions, event.event_time)
            follow = self.positions.held_symbols() != before
        touched = bool(moved or event.data.positions)
        if touched:
            self._cause = "push"
        return Outcome(changed=touched and self.polled, changes=tuple(changes), reconcile=touched, follow_marks=follow,
                       positions_wanted=bool(event.data.positions))  # fmt: skip

    def _older(self, asset: str, event: AccountUpdate, happened: int) -> bool:
        """Strictly older than what is held: pushes are ordered by E among themselves, and a poll speaks of its
        updateTime, which is a push's T (an event of the same millisecond is the later word: values are absolute)."""
        last = self._pushed.get(asset)
        if last is not None:
            return event.event_time < last.event_time
        row = self._rows.get(asset)
        return row is not None and happened < row.update_time_ms

    def config_update(self, event: AccountConfigUpdate) -> Outcome:
        """``ACCOUNT_CONFIG_UPDATE``: a Multi-Assets switch changes which assets count and how the totals count."""
        if event.leverage_symbol is not None and event.leverage is not None:
            # A symbol's leverage: shown beside its positions (v2/account.position does not carry it).
            return Outcome(changed=self.positions.leverage(event.leverage_symbol, event.leverage) and self.polled)
        if event.multi_assets is None:
            return Outcome()
        self.multi_assets = event.multi_assets
        self._cause = "push"
        return Outcome(changed=self.polled, reconcile=True, full_refresh=True)

    def order_update(self, event: OrderTradeUpdate) -> Outcome:
        """``ORDER_TRADE_UPDATE``: a fill's realized PnL (in its position's margin asset) and commission. The wallets
        it moved come in the ``ACCOUNT_UPDATE`` of the same fill: nothing shown changes here."""
        trade = Trade.of(event, self.positions.margin_asset(event.order.symbol))
        return Outcome(trades=(trade,) if trade else ())

    def stream_link(self, state: str, server_now_ms: int, detail: str = "") -> bool:
        """The stream's socket went up or down; returns whether the stream's state changed."""
        return self.trust.link(state, server_now_ms, detail)

    def stream_delivered(self) -> bool:
        """An event arrived on the stream: it delivers. Returns whether the stream's state changed."""
        return self.trust.delivered()

    # -- marks --------------------------------------------------------------------------------------------------

    def mark(self, mark: MarkPrice) -> None:
        self.positions.mark(mark.symbol, mark.price, mark.event_time)

    # -- out ----------------------------------------------------------------------------------------------------

    def _base(self) -> AccountSnapshot | None:
        """The exchange's figures as they were given, pushes applied; None before any poll."""
        if not self.polled:
            return None
        balances = {
            asset: row.flagged(margin_flag=self._flags.get(asset), multi_assets=self.multi_assets)
            for asset, row in self._rows.items()
        }
        return AccountSnapshot(
            balances=balances,
            totals=self._totals,
            multi_assets_margin=self.multi_assets,
            weight=self._weight,
            received_at_ms=self._received_at_ms,
            rtt_ms=self._rtt_ms,
        )

    def snapshot(
        self,
        now_ms: int,
        *,
        cause: Literal["poll", "push", "mark"] | None = None,
        clock_offset_ms: int = 0,
        weight_budget: int | None = None,
    ) -> AccountSnapshot | None:
        """What to show at ``now_ms`` (the exchange's clock): the exchange's figures, carried by the marks."""
        base = self._base()
        if base is None:
            return None
        base = base.model_copy(
            update={
                "server_time_ms": now_ms,
                "clock_offset_ms": clock_offset_ms,
                "weight_budget": weight_budget,
                "cause": cause or self._cause,
            }
        )
        return self.positions.carry(base, now_ms, self._at_poll)


def _pushed_change(change: BalanceChange, old: Decimal | None, at_ms: int, why: AccountUpdateData) -> Change:
    """The history's word on a pushed wallet: with the push's reason and symbol. An asset no poll listed yet has no
    known old balance, and so no known change (``bc`` leaves out PnL and commission; 0 would be a guess)."""
    delta = change.wallet_balance - old if old is not None else None
    return Change(at_ms, change.asset, old, change.wallet_balance, delta, why.reason or "UNKNOWN", why.symbol, "push")
