"""The simulated account: assets, positions whose unrealized PnL follows a walking mark price, either margin mode,
and what the exchange reports of it (balance rows, both status shapes, both position shapes)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

EIGHT = Decimal("0.00000001")
LISTEN_KEY_LIFETIME_MS = 60 * 60 * 1000
MAX_BAN_MS = 3 * 24 * 3600 * 1000

SIGNED_METHODS = frozenset({"account.balance", "v2/account.balance", "account.status", "v2/account.status"})


#: Wide enough for any balance a test or a trader can type: the default 28 digits cannot quantize a 21-digit
#: balance to 8 places.
WIDE = Context(prec=200, Emax=999_999, Emin=-999_999)


def amount(value: Decimal) -> str:
    """An amount as the exchange writes it: a string with 8 decimal places."""
    return f"{value.quantize(EIGHT, rounding=ROUND_HALF_EVEN, context=WIDE):f}"


@dataclass
class SimAsset:
    """One asset of the simulated account."""

    asset: str
    wallet: Decimal
    price: Decimal  # in USD, for Multi-Assets totals
    unrealized: Decimal = Decimal(0)
    initial_margin: Decimal = Decimal(0)
    maint_margin: Decimal = Decimal(0)
    margin_eligible: bool = True
    update_time: int = 0


class SimulatedAccount:
    """A believable futures account: several assets, positions whose unrealized PnL moves, either margin mode."""

    def __init__(self, *, multi_assets: bool = False, seed: int = 7, symbols: int = 60) -> None:
        self.multi_assets = multi_assets
        self.alias = "SgsR"
        self.rng = random.Random(seed)
        self.assets: dict[str, SimAsset] = {}
        self.symbols = [f"SYM{i:03d}USDT" for i in range(symbols)]
        for name, wallet, price, eligible in (
            ("USDT", "122607.35137903", "1", True),
            ("USDC", "25000.00000000", "0.99990000", True),
            ("BTC", "0.75000000", "96412.30000000", True),
            ("ETH", "4.20000000", "3421.55000000", True),
            ("BNB", "12.00000000", "712.40000000", True),
            ("FDUSD", "0.00000000", "1", True),
        ):
            self.assets[name] = SimAsset(name, Decimal(wallet), Decimal(price), margin_eligible=eligible)
        usdt = self.assets["USDT"]
        usdt.unrealized = Decimal("-1.21000000")
        usdt.initial_margin = Decimal("4315.12000000")
        usdt.maint_margin = Decimal("215.75600000")
        self.assets["BTC"].unrealized = Decimal("0.00042000")
        self.assets["BTC"].initial_margin = Decimal("0.01100000")
        self.assets["BTC"].maint_margin = Decimal("0.00055000")

    def set_time(self, now_ms: int) -> None:
        for asset in self.assets.values():
            if not asset.update_time and asset.wallet:
                asset.update_time = now_ms

    def tick(self, now_ms: int) -> None:
        """Move unrealized PnL a little, as marks move."""
        for asset in self.assets.values():
            if asset.initial_margin:
                step = Decimal(self.rng.randint(-250, 250)) / Decimal(100) * (asset.initial_margin / 500)
                asset.unrealized = (asset.unrealized + step).quantize(EIGHT)
                asset.update_time = now_ms

    def add_assets(self, count: int) -> None:
        """More assets, for tests of wide accounts (40 rows and beyond)."""
        for i in range(count):
            name = f"AS{i:03d}"
            self.assets[name] = SimAsset(name, Decimal(self.rng.randint(0, 10**8)) / 1000, Decimal(1))

    # -- what the exchange reports --------------------------------------------------------------------------

    def _available(self, asset: SimAsset) -> Decimal:
        return max(Decimal(0), asset.wallet + min(asset.unrealized, Decimal(0)) - asset.initial_margin)

    def _totals_usd(self) -> dict[str, Decimal]:
        members = [a for a in self.assets.values() if a.margin_eligible] if self.multi_assets else [self.assets["USDT"]]

        def total(get: Callable[[SimAsset], Decimal]) -> Decimal:
            return sum((get(a) * (a.price if self.multi_assets else 1) for a in members), Decimal(0))

        wallet = total(lambda a: a.wallet)
        unrealized = total(lambda a: a.unrealized)
        initial = total(lambda a: a.initial_margin)
        return {
            "totalInitialMargin": initial,
            "totalMaintMargin": total(lambda a: a.maint_margin),
            "totalWalletBalance": wallet,
            "totalUnrealizedProfit": unrealized,
            "totalMarginBalance": wallet + unrealized,
            "totalPositionInitialMargin": initial,
            "totalOpenOrderInitialMargin": Decimal(0),
            "totalCrossWalletBalance": wallet,
            "totalCrossUnPnl": unrealized,
            "availableBalance": max(Decimal(0), wallet + min(unrealized, Decimal(0)) - initial),
            "maxWithdrawAmount": max(Decimal(0), wallet + min(unrealized, Decimal(0)) - initial),
        }

    def _asset_available(self, asset: SimAsset, totals: Mapping[str, Decimal]) -> tuple[Decimal, Decimal]:
        if self.multi_assets and asset.margin_eligible:
            # As in the docs' examples: each margin asset repeats the account-level USD figure.
            available = totals["availableBalance"]
            return available, min(asset.wallet, available / asset.price)
        own = self._available(asset)
        return own, own

    def balance_rows(self) -> list[dict[str, Any]]:
        totals = self._totals_usd()
        rows = []
        for a in self.assets.values():
            available, max_withdraw = self._asset_available(a, totals)
            rows.append(
                {
                    "accountAlias": self.alias,
                    "asset": a.asset,
                    "balance": amount(a.wallet),
                    "crossWalletBalance": amount(a.wallet),
                    "crossUnPnl": amount(a.unrealized),
                    "availableBalance": amount(available),
                    "maxWithdrawAmount": amount(max_withdraw),
                    "marginAvailable": a.margin_eligible if self.multi_assets else a.asset == "USDT",
                    "updateTime": a.update_time,
                }
            )
        return rows

    def status(self, *, v2: bool) -> dict[str, Any]:
        totals = self._totals_usd()
        assets = []
        for a in self.assets.values():
            available, max_withdraw = self._asset_available(a, totals)
            row: dict[str, Any] = {
                "asset": a.asset,
                "walletBalance": amount(a.wallet),
                "unrealizedProfit": amount(a.unrealized),
                "marginBalance": amount(a.wallet + a.unrealized),
                "maintMargin": amount(a.maint_margin),
                "initialMargin": amount(a.initial_margin),
                "positionInitialMargin": amount(a.initial_margin),
                "openOrderInitialMargin": amount(Decimal(0)),
                "crossWalletBalance": amount(a.wallet),
                "crossUnPnl": amount(a.unrealized),
                "availableBalance": amount(available),
                "maxWithdrawAmount": amount(max_withdraw),
                "updateTime": a.update_time,
            }
            if self.multi_assets:
                row["marginAvailable"] = a.margin_eligible
            assets.append(row)
        result: dict[str, Any] = {name: amount(value) for name, value in totals.items()}
        positions = [
            {"symbol": s, "positionSide": "BOTH", "positionAmt": "0.000", "unrealizedProfit": "0.00000000"}
            for s in (self.symbols[:2] if v2 else self.symbols)
        ]
        if not v2:
            result.update(
                feeTier=0,
                canTrade=True,
                canDeposit=True,
                canWithdraw=True,
                updateTime=0,
                multiAssetsMargin=self.multi_assets,
                tradeGroupId=-1,
            )
        result["assets"] = assets
        result["positions"] = positions
        return result
