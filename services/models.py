"""Frozen, exact models of what the exchange sends, and the immutable snapshot the dashboard shows.

Every amount is a :class:`~decimal.Decimal` parsed from the exchange's decimal string and written back out with
:func:`decimal_text`, so ``"122607.35137903"`` survives character for character and ``"0.00000000"`` does not turn
into ``"0E-8"``. A malformed amount is a validation error, never a silent zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.fills import OrderTradeUpdate
from services.formatting import cut
from services.positions import LivePosition, PositionUpdate
from services.shapes import Amount, EventTime, ExchangeModel, decimal_text
from services.weight import window_end_ms

__all__ = ["Amount", "EventTime", "ExchangeModel", "decimal_text"]


class BalanceRow(ExchangeModel):
    """One row of ``account.balance`` / ``v2/account.balance``."""

    account_alias: str = Field("", alias="accountAlias")
    asset: str
    balance: Amount
    cross_wallet_balance: Amount = Field(alias="crossWalletBalance")
    cross_un_pnl: Amount = Field(alias="crossUnPnl")
    available_balance: Amount = Field(alias="availableBalance")
    max_withdraw_amount: Amount = Field(alias="maxWithdrawAmount")
    margin_available: bool | None = Field(None, alias="marginAvailable")
    update_time: int = Field(0, alias="updateTime")


class AssetStatus(ExchangeModel):
    """One entry of ``account.status``'s ``assets[]``."""

    asset: str
    wallet_balance: Amount = Field(alias="walletBalance")
    unrealized_profit: Amount = Field(alias="unrealizedProfit")
    margin_balance: Amount = Field(alias="marginBalance")
    maint_margin: Amount = Field(alias="maintMargin")
    initial_margin: Amount = Field(alias="initialMargin")
    position_initial_margin: Amount = Field(alias="positionInitialMargin")
    open_order_initial_margin: Amount = Field(alias="openOrderInitialMargin")
    cross_wallet_balance: Amount = Field(alias="crossWalletBalance")
    cross_un_pnl: Amount = Field(alias="crossUnPnl")
    available_balance: Amount = Field(alias="availableBalance")
    max_withdraw_amount: Amount = Field(alias="maxWithdrawAmount")
    # Absent in single-asset mode on some accounts (PROTOCOL.md §4): None means "the exchange did not say".
    margin_available: bool | None = Field(None, alias="marginAvailable")
    update_time: int = Field(0, alias="updateTime")


class AccountTotals(ExchangeModel):
    """The account-level totals of ``account.status`` (USD sums over margin assets in Multi-Assets mode)."""

    total_initial_margin: Amount = Field(alias="totalInitialMargin")
    total_maint_margin: Amount = Field(alias="totalMaintMargin")
    total_wallet_balance: Amount = Field(alias="totalWalletBalance")
    total_unrealized_profit: Amount = Field(alias="totalUnrealizedProfit")
    total_margin_balance: Amount = Field(alias="totalMarginBalance")
    total_position_initial_margin: Amount = Field(alias="totalPositionInitialMargin")
    total_open_order_initial_margin: Amount = Field(alias="totalOpenOrderInitialMargin")
    total_cross_wallet_balance: Amount = Field(alias="totalCrossWalletBalance")
    total_cross_un_pnl: Amount = Field(alias="totalCrossUnPnl")
    available_balance: Amount = Field(alias="availableBalance")
    max_withdraw_amount: Amount = Field(alias="maxWithdrawAmount")

    @property
    def margin_ratio(self) -> Decimal | None:
        """Maintenance margin over margin balance, as the exchange's UI shows it; None with no margin balance.

        Rounded up at 8 places: more is worse, and a quotient has as many digits as the context allows."""
        if self.total_margin_balance <= 0:
            return None
        return cut(self.total_maint_margin / self.total_margin_balance, 8, rounding=ROUND_CEILING)


class AccountStatus(AccountTotals):
    """``account.status`` (v1: with ``multiAssetsMargin``) or ``v2/account.status`` (without it)."""

    multi_assets_margin: bool | None = Field(None, alias="multiAssetsMargin")
    can_trade: bool | None = Field(None, alias="canTrade")
    can_withdraw: bool | None = Field(None, alias="canWithdraw")
    assets: tuple[AssetStatus, ...] = ()

    def totals(self) -> AccountTotals:
        return AccountTotals.model_validate(self.model_dump(include=set(AccountTotals.model_fields)))


class RateLimit(ExchangeModel):
    """One entry of a reply's ``rateLimits``: the usage of the current window, this request included."""

    rate_limit_type: str = Field(alias="rateLimitType")
    interval: str
    interval_num: int = Field(alias="intervalNum")
    limit: int
    count: int

    @property
    def window_ms(self) -> int:
        unit = {"SECOND": 1_000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}.get(self.interval, 60_000)
        return unit * self.interval_num

    def resets_at_ms(self, server_time_ms: int) -> int:
        """When this fixed window ends, given the server's time (windows start at whole intervals)."""
        return window_end_ms(server_time_ms, self.window_ms)


class WeightReading(BaseModel):
    """The IP's request weight this window as the exchange counted it, beside what this client itself spent."""

    model_config = ConfigDict(frozen=True)

    count: int
    limit: int
    own: int
    resets_at_ms: int
    server_time_ms: int

    @property
    def others(self) -> int:
        """Weight spent on this IP by other programs (REST, bots) this window: the count minus our own."""
        return max(0, self.count - self.own)

    @property
    def fraction(self) -> Decimal:
        return Decimal(self.count) / Decimal(self.limit) if self.limit else Decimal(0)


Source = Literal["poll", "push", "mark"]


class AssetBalance(BaseModel):
    """One asset as the dashboard shows it, merged from polls and pushes, with where its numbers came from."""

    model_config = ConfigDict(frozen=True)

    asset: str
    wallet_balance: Amount
    cross_wallet_balance: Amount
    cross_un_pnl: Amount
    available_balance: Amount
    max_withdraw_amount: Amount
    margin_available: bool | None = None
    update_time_ms: int = 0
    source: Source = "poll"
    source_method: str = ""
    received_at_ms: int = 0
    # Where the cross uPnL came from: the exchange (a poll), or computed from mark prices (an estimate until the next
    # poll replaces it with the exchange's own figure), and when.
    upnl_source: Source = "poll"
    upnl_time_ms: int = 0
    # Whose available ``available_balance`` is: the asset's own, or (Multi-Assets mode, an asset that counts as
    # margin) the whole account's available counted in this asset's units (PROTOCOL.md §4: 3333.21 USD for the
    # account was 0.10604798 on the BTC row). True in its unit either way; never summed, never shown as USD.
    available_scope: Literal["asset", "account"] = "asset"

    @property
    def is_zero(self) -> bool:
        return not (self.wallet_balance or self.cross_wallet_balance or self.cross_un_pnl)

    def flagged(self, *, margin_flag: bool | None, multi_assets: bool | None) -> AssetBalance:
        """This row with the margin flag ``account.balance`` gave when the status row had none, and whose available
        it reports (the account's, counted in this asset, in Multi-Assets mode for an asset that counts as margin)."""
        margin = self.margin_available if self.margin_available is not None else margin_flag
        scope: Literal["asset", "account"] = "account" if multi_assets and margin else "asset"
        if (margin, scope) == (self.margin_available, self.available_scope):
            return self
        return self.model_copy(update={"margin_available": margin, "available_scope": scope})

    @classmethod
    def from_status(cls, row: AssetStatus, *, method: str, received_at_ms: int) -> AssetBalance:
        return cls(
            asset=row.asset,
            wallet_balance=row.wallet_balance,
            cross_wallet_balance=row.cross_wallet_balance,
            cross_un_pnl=row.cross_un_pnl,
            available_balance=row.available_balance,
            max_withdraw_amount=row.max_withdraw_amount,
            margin_available=row.margin_available,
            update_time_ms=row.update_time,
            source="poll",
            source_method=method,
            received_at_ms=received_at_ms,
        )

    @classmethod
    def from_balance(cls, row: BalanceRow, *, method: str, received_at_ms: int) -> AssetBalance:
        return cls(
            asset=row.asset,
            wallet_balance=row.balance,
            cross_wallet_balance=row.cross_wallet_balance,
            cross_un_pnl=row.cross_un_pnl,
            available_balance=row.available_balance,
            max_withdraw_amount=row.max_withdraw_amount,
            margin_available=row.margin_available,
            update_time_ms=row.update_time,
            source="poll",
            source_method=method,
            received_at_ms=received_at_ms,
        )


class AccountSnapshot(BaseModel):
    """Everything the dashboard knows at one moment. Immutable: a change makes a new snapshot."""

    model_config = ConfigDict(frozen=True)

    balances: dict[str, AssetBalance]
    totals: AccountTotals | None = None
    multi_assets_margin: bool | None = None
    weight: WeightReading | None = None
    server_time_ms: int = 0
    received_at_ms: int = 0
    rtt_ms: int | None = None
    clock_offset_ms: int = 0
    weight_budget: int | None = None  # this app's own weight allowance per minute
    cause: str = "poll"  # what made this snapshot: a poll, a push (ACCOUNT_UPDATE / ACCOUNT_CONFIG_UPDATE), or marks
    positions: tuple[LivePosition, ...] = ()
    # The totals' uPnL, margin balance and maintenance margin: the exchange's ("poll") or computed from marks ("mark",
    # an estimate: maintenance margin scaled with notional inside one bracket), and when.
    totals_source: Source = "poll"
    totals_time_ms: int = 0
    marks_stale: bool = False  # positions are held but their marks stopped: the figures are the last poll's

    def json_dict(self) -> dict[str, Any]:
        """Plain JSON data with every amount as the exchange's exact decimal string."""
        return self.model_dump(mode="json", by_alias=False)


class BalanceChange(ExchangeModel):
    """One asset of an ACCOUNT_UPDATE: absolute wallet and cross wallet balances, and the change."""

    asset: str = Field(alias="a")
    wallet_balance: Amount = Field(alias="wb")
    cross_wallet_balance: Amount = Field(alias="cw")
    balance_change: Amount = Field(Decimal(0), alias="bc")


class AccountUpdateData(ExchangeModel):
    reason: str = Field("", alias="m")
    symbol: str | None = Field(None, alias="S")
    balances: tuple[BalanceChange, ...] = Field((), alias="B")
    positions: tuple[PositionUpdate, ...] = Field((), alias="P")


class AccountUpdate(ExchangeModel):
    """``ACCOUNT_UPDATE``: balances changed (only the assets listed)."""

    event: Literal["ACCOUNT_UPDATE"] = Field(alias="e")
    event_time: EventTime = Field(alias="E")
    transaction_time: EventTime = Field(0, alias="T")
    data: AccountUpdateData = Field(alias="a")


class MarginCallPosition(ExchangeModel):
    symbol: str = Field(alias="s")
    side: str = Field("", alias="ps")
    amount: Amount = Field(Decimal(0), alias="pa")
    margin_type: str = Field("", alias="mt")
    mark_price: Amount = Field(Decimal(0), alias="mp")
    unrealized: Amount = Field(Decimal(0), alias="up")
    maint_margin: Amount = Field(Decimal(0), alias="mm")


class MarginCall(ExchangeModel):
    """``MARGIN_CALL``: positions close to liquidation."""

    event: Literal["MARGIN_CALL"] = Field(alias="e")
    event_time: EventTime = Field(alias="E")
    cross_wallet_balance: Amount | None = Field(None, alias="cw")
    positions: tuple[MarginCallPosition, ...] = Field((), alias="p")


class AccountConfigUpdate(ExchangeModel):
    """``ACCOUNT_CONFIG_UPDATE``: ``ai.j`` is the Multi-Assets mode; ``ac`` a symbol's new leverage."""

    event: Literal["ACCOUNT_CONFIG_UPDATE"] = Field(alias="e")
    event_time: EventTime = Field(alias="E")
    multi_assets: bool | None = None
    leverage_symbol: str | None = None  # ``ac.s`` and ``ac.l``: a symbol's leverage changed
    leverage: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> AccountConfigUpdate:
        ai, ac = raw.get("ai"), raw.get("ac")
        flag = ai.get("j") if isinstance(ai, dict) else None
        lever = ac.get("l") if isinstance(ac, dict) else None
        symbol = ac.get("s") if isinstance(ac, dict) else None
        known = isinstance(lever, int) and not isinstance(lever, bool) and isinstance(symbol, str)
        return cls.model_validate(
            {
                **raw,
                "multi_assets": flag if isinstance(flag, bool) else None,
                "leverage_symbol": symbol if known else None,
                "leverage": lever if known else None,
            }
        )


class ListenKeyExpired(ExchangeModel):
    """``listenKeyExpired``: the stream is over; a new key is needed."""

    event: Literal["listenKeyExpired"] = Field(alias="e")
    event_time: EventTime = Field(alias="E")
    listen_key: str = Field("", alias="listenKey")


UserDataEvent = AccountUpdate | MarginCall | AccountConfigUpdate | ListenKeyExpired | OrderTradeUpdate


def parse_user_data_event(raw: object) -> UserDataEvent | None:
    """The event in a stream frame (plain or ``{"stream", "data"}``); None for events balance-tui ignores.

    Raises ``ValueError`` (pydantic's ValidationError) for a known event of the wrong shape.
    """
    if isinstance(raw, dict) and isinstance(raw.get("data"), dict) and "stream" in raw:
        raw = raw["data"]
    if not isinstance(raw, dict):
        raise ValueError("a stream frame must be a JSON object")
    kind = raw.get("e")
    if kind == "ACCOUNT_UPDATE":
        return AccountUpdate.model_validate(raw)
    if kind == "MARGIN_CALL":
        return MarginCall.model_validate(raw)
    if kind == "ACCOUNT_CONFIG_UPDATE":
        return AccountConfigUpdate.parse(raw)
    if kind == "listenKeyExpired":
        return ListenKeyExpired.model_validate(raw)
    if kind == "ORDER_TRADE_UPDATE":
        return OrderTradeUpdate.model_validate(raw)
    return None


class LinkState(StrEnum):
    """What the connection to the exchange is doing, as the status line says it."""

    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    RATE_LIMITED = "rate-limited"
    BANNED = "banned"
    CREDENTIALS_REJECTED = "credentials rejected"
    UNSUPPORTED = "unsupported account"  # a Portfolio Margin account: its balances are on other endpoints
    PAUSED = "paused"
    ERROR = "error"
    CLOSED = "closed"


class ConnectionStatus(BaseModel):
    """The connection's state and the facts behind it, for the status line and ``watch --jsonl``."""

    model_config = ConfigDict(frozen=True)

    state: LinkState
    endpoint: str
    since_ms: int
    detail: str = ""
    retry_at_ms: int | None = None
    attempt: int = 0
    interval_ms: int = 0
    last_success_ms: int | None = None
    # The user-data stream: off, connecting, reconnecting, unproven (open, not yet shown to deliver), live (it has
    # delivered, or a reconcile found nothing it missed), silent (a poll found a change it never delivered).
    stream: str = "off"
    stream_detail: str = ""  # why the stream is in that state, in plain words (silent: what it missed)


@dataclass(frozen=True)
class Change:
    """One balance change of one asset: what the wallet was, what it became, and why."""

    at_ms: int
    asset: str
    old_wallet: Decimal | None
    new_wallet: Decimal
    delta: Decimal | None  # None: the old balance was not known (the first word on an asset was a push)
    reason: str
    symbol: str | None
    source: str  # push or poll

    def json_dict(self) -> dict[str, object]:
        return {
            "at_ms": self.at_ms,
            "asset": self.asset,
            "old_wallet": None if self.old_wallet is None else decimal_text(self.old_wallet),
            "new_wallet": decimal_text(self.new_wallet),
            "delta": None if self.delta is None else decimal_text(self.delta),
            "reason": self.reason,
            "symbol": self.symbol,
            "source": self.source,
        }
