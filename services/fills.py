"""Fills: what an ``ORDER_TRADE_UPDATE`` says of a trade, and what the trade did to the wallets (realized PnL and
commission), for today's figures (services/today.py) and the local history."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field

from services.shapes import Amount, EventTime, ExchangeModel, decimal_text

ZERO = Decimal(0)


class OrderFill(ExchangeModel):
    """The ``o`` of an ``ORDER_TRADE_UPDATE``: only what today's figures read."""

    symbol: str = Field(alias="s")
    side: str = Field("", alias="S")
    position_side: str = Field("BOTH", alias="ps")
    execution: str = Field("", alias="x")  # TRADE for a fill, CALCULATED for a liquidation's; NEW, CANCELED...
    commission: Amount = Field(ZERO, alias="n")  # not sent when there is none
    commission_asset: str | None = Field(None, alias="N")
    realized: Amount = Field(ZERO, alias="rp")
    trade_time: EventTime = Field(0, alias="T")
    trade_id: int = Field(0, alias="t")


class OrderTradeUpdate(ExchangeModel):
    """``ORDER_TRADE_UPDATE``: an order changed; a fill among them carries its realized PnL and commission."""

    event: Literal["ORDER_TRADE_UPDATE"] = Field(alias="e")
    event_time: EventTime = Field(alias="E")
    transaction_time: EventTime = Field(0, alias="T")
    order: OrderFill = Field(alias="o")


@dataclass(frozen=True)
class Trade:
    """What a fill did to the wallets: realized PnL in the position's margin asset, commission (charged: negative)
    in its own asset."""

    at_ms: int
    symbol: str
    trade_id: int
    realized: Decimal
    realized_asset: str
    commission: Decimal  # as it moves the wallet: −n
    commission_asset: str

    @classmethod
    def of(cls, event: OrderTradeUpdate, margin_asset: str) -> Trade | None:
        """The fill in an order event, or None when it moved no wallet (a new order, a cancel)."""
        o = event.order
        if not o.realized and not o.commission:
            return None
        at = o.trade_time or event.transaction_time or event.event_time
        return cls(
            at, o.symbol, o.trade_id, o.realized, margin_asset, -o.commission, o.commission_asset or margin_asset
        )

    def json_dict(self) -> dict[str, object]:
        return {
            "at_ms": self.at_ms,
            "symbol": self.symbol,
            "trade_id": self.trade_id,
            "realized": decimal_text(self.realized),
            "realized_asset": self.realized_asset,
            "commission": decimal_text(self.commission),
            "commission_asset": self.commission_asset,
        }
