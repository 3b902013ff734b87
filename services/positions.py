"""Positions and mark prices (PROTOCOL.md §6b): what ``v2/account.position``, ``ACCOUNT_UPDATE`` ``a.P[]`` and the
``/market`` mark-price stream say, and a position as the dashboard shows it, live."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, computed_field

from services.formatting import cut
from services.shapes import Amount, EventTime, ExchangeModel

#: The quote assets a USDⓈ-M symbol's PnL is booked in, when a push does not say (``BTCUSDC`` → USDC).
MARGIN_ASSETS = ("USDT", "USDC", "FDUSD", "BFUSD")


def margin_asset_of(symbol: str) -> str:
    return next((asset for asset in MARGIN_ASSETS if symbol.endswith(asset)), "USDT")


def _small_int(value: object) -> int | None:
    # ``adl`` is an int in the docs' example; ``leverage`` a string ("10") in v1 rows: accept both, never a bool.
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return int(text) if text.isdigit() else None


SmallInt = Annotated[int | None, BeforeValidator(_small_int)]


class Position(ExchangeModel):
    """One row of ``v2/account.position`` (or v1 ``account.position``)."""

    symbol: str
    position_side: str = Field("BOTH", alias="positionSide")
    position_amt: Amount = Field(alias="positionAmt")
    entry_price: Amount = Field(Decimal(0), alias="entryPrice")
    mark_price: Amount | None = Field(None, alias="markPrice")
    # The SDK renamed its field from unrealizedProfit to unRealizedProfit (2026-01): the wire may use either.
    un_realized_profit: Amount = Field(
        Decimal(0), validation_alias=AliasChoices("unRealizedProfit", "unrealizedProfit")
    )
    margin_asset: str = Field("", alias="marginAsset")
    notional: Amount = Decimal(0)
    maint_margin: Amount = Field(Decimal(0), alias="maintMargin")
    initial_margin: Amount = Field(Decimal(0), alias="initialMargin")
    isolated_wallet: Amount = Field(Decimal(0), alias="isolatedWallet")
    margin_type: str | None = Field(None, alias="marginType")  # v1 only
    update_time: int = Field(0, alias="updateTime")
    # Risk (PROTOCOL.md §10): "0" is no liquidation price (a position the wallet fully covers); absent is unknown.
    liquidation_price: Amount | None = Field(None, alias="liquidationPrice")
    break_even_price: Amount | None = Field(None, alias="breakEvenPrice")
    adl: SmallInt = None  # the auto-deleverage queue's quantile, 0-4 (4: first in line)
    leverage: SmallInt = None  # v1 only

    @property
    def isolated(self) -> bool:
        if self.margin_type is not None:
            return self.margin_type.lower() == "isolated"
        return bool(self.isolated_wallet)

    @property
    def asset(self) -> str:
        return self.margin_asset or margin_asset_of(self.symbol)


class PositionUpdate(ExchangeModel):
    """One entry of ``ACCOUNT_UPDATE`` ``a.P[]``: only the positions that changed; ``pa`` 0 is a closed position."""

    symbol: str = Field(alias="s")
    amount: Amount = Field(alias="pa")
    entry_price: Amount = Field(Decimal(0), alias="ep")
    break_even_price: Amount | None = Field(None, alias="bep")
    unrealized: Amount = Field(Decimal(0), alias="up")
    margin_type: str = Field("cross", alias="mt")
    isolated_wallet: Amount = Field(Decimal(0), alias="iw")
    side: str = Field("BOTH", alias="ps")
    # The asset the position is margined in (PROTOCOL.md §10): a credits-mode account holds BNFCR, which no
    # symbol's suffix names. Absent, the suffix is the best guess left.
    margin_asset: str | None = Field(None, alias="ma")


class MarkPrice(ExchangeModel):
    """``markPriceUpdate`` from ``<symbol>@markPrice@1s``: ``p`` is the mark price that uPnL is computed from."""

    event: Literal["markPriceUpdate"] = Field(alias="e")
    event_time: EventTime = Field(alias="E")
    symbol: str = Field(alias="s")
    price: Amount = Field(alias="p")
    index: Amount | None = Field(None, alias="i")
    funding_rate: Amount | None = Field(None, alias="r")
    next_funding_ms: int | None = Field(None, alias="T")
    settle_type: int = Field(1, alias="st")  # 1 USDⓈ-M, 2 COIN-M (2026-06): COIN-M rows are ignored


def parse_mark_frame(raw: object) -> MarkPrice | list[MarkPrice] | None:
    """The mark price(s) in a ``/market`` frame (plain, combined, or an ``!markPrice@arr`` array); None for others."""
    if isinstance(raw, dict) and "stream" in raw and "data" in raw:
        raw = raw["data"]
    if isinstance(raw, list):
        marks = [MarkPrice.model_validate(item) for item in raw if _is_mark(item)]
        return [m for m in marks if m.settle_type != 2]
    if not _is_mark(raw):
        return None
    mark = MarkPrice.model_validate(raw)
    return None if mark.settle_type == 2 else mark


def _is_mark(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("e") == "markPriceUpdate"


Source = Literal["poll", "push", "mark"]


class LivePosition(BaseModel):
    """A position as the dashboard shows it: its uPnL computed from the latest mark, with where that came from."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    side: str
    amount: Amount
    entry_price: Amount
    mark_price: Amount | None
    unrealized: Amount
    notional: Amount
    margin_asset: str
    isolated: bool = False
    maint_margin: Amount = Decimal(0)  # the exchange's at the last poll, or scaled with notional since (estimate)
    source: Source = "poll"
    time_ms: int = 0
    # The exchange's figures at the last poll (a cross position's liquidation price moves with the others' PnL
    # between polls): None where the exchange has not said (a position a push opened), 0 for no liquidation price.
    liquidation_price: Amount | None = None
    break_even_price: Amount | None = None
    leverage: int | None = None
    adl: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def liq_distance(self) -> Decimal | None:
        """How far the mark may move against the position before it reaches the liquidation price, as a fraction of
        the mark: a long's is below the mark, a short's above. At or past the price it is 0 or less (never "safe");
        None when there is no liquidation price or no mark. An estimate unless both are the same poll's."""
        return liquidation_distance(self.amount, self.mark_price, self.liquidation_price)

    @property
    def risk_estimated(self) -> bool:
        """The distance reads a live mark (or a pushed change) against the last poll's liquidation price."""
        return self.source != "poll"


def liquidation_distance(amount: Decimal, mark: Decimal | None, liquidation: Decimal | None) -> Decimal | None:
    """(mark − liquidation) / mark for a long, (liquidation − mark) / mark for a short: the fraction the mark can move
    against the position. Cut toward −∞ at 8 places: never nearer safety than the exact quotient."""
    if not amount or not mark or mark <= 0 or liquidation is None or liquidation <= 0:
        return None
    room = mark - liquidation if amount > 0 else liquidation - mark
    return cut(room / mark, 8, rounding=ROUND_FLOOR)
