"""The simulated account: assets, positions whose unrealized PnL follows a walking mark price, either margin mode,
and what the exchange reports of it (balance rows, both status shapes, both position shapes)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

EIGHT = Decimal("0.00000001")

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


@dataclass
class SimPosition:
    """One open position: signed amount (short < 0), entry price, the asset its PnL is booked in."""

    symbol: str
    side: str  # BOTH in one-way mode, LONG or SHORT in hedge mode
    amount: Decimal
    entry: Decimal
    margin_asset: str
    leverage: int = 10
    maint_rate: Decimal = Decimal("0.004")
    isolated: bool = False
    update_time: int = 0
    # The exchange's liquidation price when set (a test's or the demo's: a short already past it, a long 0.5 % away);
    # otherwise computed as a cross position's, from the wallet and the other positions' PnL (liquidation_price).
    liquidation: Decimal | None = None
    adl: int = 2


#: The demo's positions: one-way and hedge, USDT- and USDC-margined (symbol, side, amount, entry, asset, mark, tick,
#: liquidation price, ADL quantile). The liquidation prices are given, as for positions margined tighter than the
#: demo's wallet would make them: a wallet of 122,607 USDT covers every one of these, and "0" everywhere shows nothing.
DEMO_POSITIONS = (
    ("BTCUSDT", "BOTH", "0.500", "95000.00", "USDT", "96412.30", "0.10", "89463.10", 2),
    ("ETHUSDT", "LONG", "3.000", "3300.00", "USDT", "3421.55", "0.01", "3118.40", 1),
    ("ETHUSDT", "SHORT", "-1.000", "3500.00", "USDT", "3421.55", "0.01", "3905.12", 4),
    ("SOLUSDC", "BOTH", "40", "180.000", "USDC", "182.150", "0.001", "0", 0),
)


class SimulatedAccount:
    """A believable futures account: several assets, positions whose unrealized PnL follows walking mark prices,
    either margin mode. Every figure it reports is computed from the same state at the moment it is asked."""

    def __init__(self, *, multi_assets: bool = False, seed: int = 7, symbols: int = 60, positions: bool = True) -> None:
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
        self.assets["BTC"].unrealized = Decimal("0.00042000")
        self.assets["BTC"].initial_margin = Decimal("0.01100000")
        self.assets["BTC"].maint_margin = Decimal("0.00055000")
        self.positions: dict[tuple[str, str], SimPosition] = {}
        self.marks: dict[str, Decimal] = {}
        self.ticks: dict[str, Decimal] = {}  # each symbol's price step
        self.mark_time = 0
        for symbol, side, amt, entry, asset, mark, step, liq, adl in DEMO_POSITIONS if positions else ():
            self.positions[(symbol, side)] = SimPosition(
                symbol, side, Decimal(amt), Decimal(entry), asset, liquidation=Decimal(liq), adl=adl
            )
            self.marks[symbol] = Decimal(mark)
            self.ticks[symbol] = Decimal(step)

    def set_time(self, now_ms: int) -> None:
        self.mark_time = self.mark_time or now_ms
        for asset in self.assets.values():
            if not asset.update_time and asset.wallet:
                asset.update_time = now_ms
        for position in self.positions.values():
            position.update_time = position.update_time or now_ms

    def tick(self, now_ms: int) -> None:
        """Walk every mark price a few ticks up or down, as the market does second by second."""
        for symbol, mark in self.marks.items():
            step = self.ticks.get(symbol, Decimal("0.01"))
            self.marks[symbol] = max(step, mark + step * self.rng.randint(-30, 30))
        self.mark_time = now_ms

    # -- positions ------------------------------------------------------------------------------------------

    def position_pnl(self, p: SimPosition) -> Decimal:
        return p.amount * (self.marks[p.symbol] - p.entry)

    def _notional(self, p: SimPosition) -> Decimal:
        return p.amount * self.marks[p.symbol]

    def _held(self, asset: str, *, cross_only: bool = False) -> list[SimPosition]:
        return [p for p in self.positions.values() if p.margin_asset == asset and not (cross_only and p.isolated)]

    def unrealized(self, a: SimAsset, *, cross_only: bool = False) -> Decimal:
        return a.unrealized + sum(
            (self.position_pnl(p) for p in self._held(a.asset, cross_only=cross_only)), Decimal(0)
        )

    def initial_margin(self, a: SimAsset) -> Decimal:
        held = self._held(a.asset)
        return a.initial_margin + sum((abs(self._notional(p)) / p.leverage for p in held), Decimal(0))

    def maint_margin(self, a: SimAsset) -> Decimal:
        return a.maint_margin + sum((abs(self._notional(p)) * p.maint_rate for p in self._held(a.asset)), Decimal(0))

    def liquidation_price(self, p: SimPosition) -> Decimal:
        """The mark at which the position's margin asset would be down to its maintenance margin, the other positions
        of that asset at their marks (a cross position's liquidation price moves with their PnL); 0 when no mark
        reaches it (the wallet covers the position). A price set on the position is the exchange's word instead."""
        if p.liquidation is not None:
            return p.liquidation
        others = [o for o in self._held(p.margin_asset, cross_only=True) if o is not p]
        wallet = self.assets[p.margin_asset].wallet if p.margin_asset in self.assets else Decimal(0)
        room = wallet + sum((self.position_pnl(o) for o in others), Decimal(0))
        room -= sum((abs(self._notional(o)) * o.maint_rate for o in others), Decimal(0))
        # room + amount × (P − entry) = |amount| × P × rate, solved for P.
        price = (p.amount * p.entry - room) / (p.amount - abs(p.amount) * p.maint_rate)
        return max(price, Decimal(0))

    def change_position(
        self,
        symbol: str,
        side: str,
        size: Decimal,
        entry: Decimal,
        now_ms: int,
        *,
        margin_asset: str | None = None,
        realize: bool = True,
    ) -> dict[str, Any]:
        """Open, change or (size 0) close a position; returns its ``a.P[]`` entry as the exchange pushes it.

        ``margin_asset`` for an account whose margin is not the symbol's quote (credits mode: BNFCR); ``realize``
        False when the caller books the realized PnL itself (a fill that says how much)."""
        key = (symbol, side)
        old = self.positions.get(key)
        asset = margin_asset or (old.margin_asset if old else ("USDC" if symbol.endswith("USDC") else "USDT"))
        self.marks.setdefault(symbol, entry)
        self.ticks.setdefault(symbol, Decimal("0.01"))
        if size:
            adl = old.adl if old is not None else 2
            self.positions[key] = SimPosition(symbol, side, size, entry, asset, update_time=now_ms, adl=adl)
            pnl = self.position_pnl(self.positions[key])
        else:
            if old is not None and realize:  # closing realizes the PnL into the wallet
                self.assets[asset].wallet += self.position_pnl(old)
                self.assets[asset].update_time = now_ms
            self.positions.pop(key, None)
            pnl = Decimal(0)
        return {
            "s": symbol, "pa": f"{size:f}", "ep": f"{entry if size else Decimal(0):f}", "bep": f"{entry:f}",
            "cr": "0", "up": amount(pnl), "mt": "cross", "iw": "0", "ps": side, "ma": asset,
        }  # fmt: skip

    def position_rows(self, *, v2: bool) -> list[dict[str, Any]]:
        """``v2/account.position`` (held symbols only) or v1 ``account.position`` (every symbol of the market)."""
        rows = []
        for p in self.positions.values():
            notional = self._notional(p)
            row: dict[str, Any] = {
                "symbol": p.symbol,
                "positionSide": p.side,
                "positionAmt": f"{p.amount:f}",
                "entryPrice": f"{p.entry:f}",
                "breakEvenPrice": f"{p.entry:f}",
                "markPrice": amount(self.marks[p.symbol]),
                "unRealizedProfit": amount(self.position_pnl(p)),
                "liquidationPrice": amount(self.liquidation_price(p)),
                "isolatedMargin": "0",
                "notional": amount(notional),
                "marginAsset": p.margin_asset,
                "isolatedWallet": "0",
                "initialMargin": amount(abs(notional) / p.leverage),
                "maintMargin": amount(abs(notional) * p.maint_rate),
                "positionInitialMargin": amount(abs(notional) / p.leverage),
                "openOrderInitialMargin": "0",
                "adl": p.adl,
                "bidNotional": "0",
                "askNotional": "0",
                "updateTime": p.update_time,
            }
            if not v2:
                row.update(marginType="cross", leverage=str(p.leverage), isAutoAddMargin="false", maxNotionalValue="0")
            rows.append(row)
        if not v2:
            held = {p.symbol for p in self.positions.values()}
            rows += [
                {"symbol": s, "positionSide": "BOTH", "positionAmt": "0.000", "entryPrice": "0.0",
                 "markPrice": "0", "unRealizedProfit": "0.00000000", "marginAsset": "USDT", "notional": "0",
                 "marginType": "cross", "updateTime": 0}
                for s in self.symbols if s not in held
            ]  # fmt: skip
        return rows

    def add_assets(self, count: int) -> None:
        """More assets, for tests of wide accounts (40 rows and beyond)."""
        for i in range(count):
            name = f"AS{i:03d}"
            self.assets[name] = SimAsset(name, Decimal(self.rng.randint(0, 10**8)) / 1000, Decimal(1))

    # -- what the exchange reports --------------------------------------------------------------------------

    def _available(self, asset: SimAsset) -> Decimal:
        loss = min(self.unrealized(asset), Decimal(0))
        return max(Decimal(0), asset.wallet + loss - self.initial_margin(asset))

    def _totals_usd(self) -> dict[str, Decimal]:
        members = [a for a in self.assets.values() if a.margin_eligible] if self.multi_assets else [self.assets["USDT"]]

        def total(get: Callable[[SimAsset], Decimal]) -> Decimal:
            return sum((get(a) * (a.price if self.multi_assets else 1) for a in members), Decimal(0))

        wallet = total(lambda a: a.wallet)
        unrealized = total(self.unrealized)
        initial = total(self.initial_margin)
        return {
            "totalInitialMargin": initial,
            "totalMaintMargin": total(self.maint_margin),
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
            # As production reports it (PROTOCOL.md §4, a 2023 capture): each margin asset's availableBalance is the
            # whole account's available counted in that asset's own units (3333.21 USD was 0.10604798 on the BTC
            # row); max withdraw stays the asset's own.
            available = totals["availableBalance"] / asset.price
            return available, min(asset.wallet, available)
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
                    "crossUnPnl": amount(self.unrealized(a, cross_only=True)),
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
                "unrealizedProfit": amount(self.unrealized(a)),
                "marginBalance": amount(a.wallet + self.unrealized(a)),
                "maintMargin": amount(self.maint_margin(a)),
                "initialMargin": amount(self.initial_margin(a)),
                "positionInitialMargin": amount(self.initial_margin(a)),
                "openOrderInitialMargin": amount(Decimal(0)),
                "crossWalletBalance": amount(a.wallet),
                "crossUnPnl": amount(self.unrealized(a, cross_only=True)),
                "availableBalance": amount(available),
                "maxWithdrawAmount": amount(max_withdraw),
                "updateTime": a.update_time,
            }
            if self.multi_assets:
                row["marginAvailable"] = a.margin_eligible
            assets.append(row)
        result: dict[str, Any] = {name: amount(value) for name, value in totals.items()}
        # v2 lists the symbols in use, with no entry or mark price; v1 every symbol, with the entry price.
        positions = []
        for row in self.position_rows(v2=v2):
            shaped: dict[str, Any] = {
                k: row[k]
                for k in ("symbol", "positionSide", "positionAmt", "unRealizedProfit", "notional", "updateTime")
                if k in row
            }
            shaped["unrealizedProfit"] = shaped.pop("unRealizedProfit")
            if not v2:
                shaped["entryPrice"] = row["entryPrice"]
            positions.append(shaped)
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
