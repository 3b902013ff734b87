"""The positions and their mark prices: what the exchange said of each position, and what the marks make of it now.
Pure: no I/O, no clock; owned by the account core (services/account.py), which gives it the balances to carry.

uPnL of a USDⓈ-M position is ``positionAmt × (mark − entry)``, booked in its margin asset (PROTOCOL.md §6b). Between
polls the book computes each cross position's uPnL from the latest mark, sums them per asset, and carries the totals
(margin balance, margin ratio) along — every computed figure marked ``mark`` with its time, an estimate until the next
poll replaces it with the exchange's own number (the difference is logged as drift). A mark older than what a poll or
push said is not used; stale marks (services.freshness) are not used, and the figures fall back to the last poll.
Available and max withdraw only ever come from the exchange. Every time the book is given or compares is on the
exchange's clock (marks and pushes are stamped with it): a machine clock a few seconds off must not make fresh marks
look stale, or a poll look newer than the marks that came after it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal

from services.formatting import cut
from services.freshness import MARK_MAX_AGE_MS, mark_is_fresh
from services.models import AccountSnapshot, AssetBalance
from services.positions import LivePosition, Position, PositionUpdate, Source, margin_asset_of

ZERO = Decimal(0)
PLACES = 8  # the exchange's: an estimate has no more digits than the figures it stands in for


@dataclass(frozen=True)
class _Held:
    """A position as last told by a poll or a push, and what the last poll counted for it."""

    symbol: str
    side: str
    amount: Decimal
    entry: Decimal
    margin_asset: str
    isolated: bool
    unrealized: Decimal  # as last told
    notional: Decimal
    mark: Decimal | None
    maint_margin: Decimal  # the exchange's at the last poll
    notional_at_poll: Decimal
    source: str
    time_ms: int
    liquidation: Decimal | None = None  # the exchange's at the last poll (None: not said yet)
    break_even: Decimal | None = None
    leverage: int | None = None
    adl: int | None = None


#: The assets whose wallets the Multi-Assets estimate values at 1 USD (an estimate: the exchange applies haircuts).
STABLE = frozenset({"USDT", "USDC", "FDUSD", "BFUSD", "USD"})


def _counted(base: AccountSnapshot, asset: str) -> bool:
    """Whether the account's totals count this asset: USDT alone in single-asset mode, every margin asset in
    Multi-Assets mode (in USD)."""
    return bool(base.multi_assets_margin) or asset == "USDT"


@dataclass(frozen=True)
class Sums:
    """What the totals are moved by, summed over what they count: wallets (pushes move them), uPnL, maintenance."""

    wallet: Decimal
    unrealized: Decimal
    cross_unrealized: Decimal
    maint_margin: Decimal

    @classmethod
    def of(cls, base: AccountSnapshot, balances: dict[str, AssetBalance], positions: list[LivePosition]) -> Sums:
        counted = [p for p in positions if _counted(base, p.margin_asset)]
        # Wallets in USD only where the unit is USD already: USDT in single-asset mode, the stablecoins at 1 in
        # Multi-Assets mode (a BTC wallet pushed between polls waits for the poll to be valued).
        wallets = [
            row.wallet_balance
            for asset, row in balances.items()
            if _counted(base, asset) and (asset == "USDT" or asset in STABLE)
        ]
        return cls(
            wallet=sum(wallets, ZERO),
            unrealized=sum((p.unrealized for p in counted), ZERO),
            cross_unrealized=sum((p.unrealized for p in counted if not p.isolated), ZERO),
            maint_margin=sum((p.maint_margin for p in counted), ZERO),
        )


@dataclass(frozen=True)
class _Mark:
    price: Decimal
    time_ms: int


class PositionBook:
    """The positions held and the marks of their symbols; :meth:`carry` moves an account's figures by the marks."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], _Held] = {}
        self._marks: dict[str, _Mark] = {}
        self._had_positions: set[str] = set()  # margin assets with positions at the last poll
        self._asset_of: dict[str, str] = {}  # each symbol's margin asset, as last told (kept after a close)

    # -- in -----------------------------------------------------------------------------------------------------

    def positions_polled(self, positions: list[Position], at_ms: int) -> None:
        """Every open position, from ``v2/account.position``: replaces what the book held."""
        before, self._held = self._held, {}
        for p in positions:
            if not p.position_amt:
                continue
            old = before.get((p.symbol, p.position_side))
            self._held[(p.symbol, p.position_side)] = _Held(
                symbol=p.symbol,
                side=p.position_side,
                amount=p.position_amt,
                entry=p.entry_price,
                margin_asset=p.asset,
                isolated=p.isolated,
                unrealized=p.un_realized_profit,
                notional=p.notional,
                mark=p.mark_price,
                maint_margin=p.maint_margin,
                notional_at_poll=p.notional,
                source="poll",
                time_ms=max(p.update_time, at_ms),
                liquidation=p.liquidation_price,
                break_even=p.break_even_price,
                # v2 rows carry no leverage: what an ACCOUNT_CONFIG_UPDATE said of the symbol stands
                leverage=p.leverage if p.leverage is not None else (old.leverage if old else None),
                adl=p.adl,
            )
        self._had_positions = {h.margin_asset for h in self._held.values() if not h.isolated}
        self._asset_of.update({h.symbol: h.margin_asset for h in self._held.values()})

    def positions_pushed(self, updates: tuple[PositionUpdate, ...], event_time_ms: int) -> None:
        """``ACCOUNT_UPDATE`` ``a.P[]``: upsert the positions that changed; ``pa`` 0 closes one."""
        for u in updates:
            key = (u.symbol, u.side)
            old = self._held.get(key)
            if not u.amount:
                self._held.pop(key, None)
                continue
            mark = old.mark if old else None
            notional = cut(u.amount * mark, PLACES) if mark is not None else (old.notional if old else ZERO)
            self._held[key] = _Held(
                symbol=u.symbol,
                side=u.side,
                amount=u.amount,
                entry=u.entry_price,
                margin_asset=u.margin_asset or (old.margin_asset if old else margin_asset_of(u.symbol)),
                isolated=u.margin_type.lower() == "isolated",
                unrealized=u.unrealized,
                notional=notional,
                mark=mark,
                maint_margin=old.maint_margin if old else ZERO,
                notional_at_poll=old.notional_at_poll if old else ZERO,
                source="push",
                time_ms=event_time_ms,
                # A push carries no liquidation price or ADL quantile: the last poll's stand (an estimate now: the
                # distance wears ≈) until the reconcile poll the push asks for. A position the push opened, or
                # turned from long to short, has none yet: the old price is on the wrong side of the mark.
                liquidation=old.liquidation if old and (old.amount > 0) == (u.amount > 0) else None,
                break_even=u.break_even_price if u.break_even_price is not None else (old.break_even if old else None),
                leverage=old.leverage if old else None,
                adl=old.adl if old else None,
            )

        self._asset_of.update({h.symbol: h.margin_asset for h in self._held.values()})

    def mark(self, symbol: str, price: Decimal, time_ms: int) -> None:
        self._marks[symbol] = _Mark(price, time_ms)

    def leverage(self, symbol: str, leverage: int) -> bool:
        """A symbol's leverage changed (``ACCOUNT_CONFIG_UPDATE`` ``ac``): its positions say so; whether any did."""
        changed = False
        for key, held in self._held.items():
            if held.symbol == symbol and held.leverage != leverage:
                self._held[key] = replace(held, leverage=leverage)
                changed = True
        return changed

    def margin_asset(self, symbol: str) -> str:
        """The asset a symbol's PnL is booked in: as the exchange last said (``ma``, ``marginAsset``), even after the
        position closed (the fill that closed it is told after), else the symbol's suffix."""
        return self._asset_of.get(symbol) or margin_asset_of(symbol)

    # -- out ----------------------------------------------------------------------------------------------------

    def has_marks(self) -> bool:
        return bool(self._marks)

    def held_symbols(self) -> set[str]:
        return {h.symbol for h in self._held.values()}

    def marks_fresh(self, now_ms: int) -> bool:
        """Every held symbol has a mark younger than the limit (trivially true with no positions)."""
        return all(self._fresh(symbol, now_ms) for symbol in self.held_symbols())

    def marks_fresh_until(self) -> int | None:
        """The first moment :meth:`marks_fresh` turns false if no mark arrives (None: no positions, or not fresh)."""
        held = self.held_symbols()
        times = [self._marks[symbol].time_ms for symbol in held if symbol in self._marks]
        if not held or len(times) < len(held):
            return None
        return min(times) + MARK_MAX_AGE_MS + 1

    def burst_complete(self) -> bool:
        """Every symbol held has its mark of the newest second any of them has: the burst can be painted now.

        Marks of one second arrive one frame a symbol, milliseconds apart; the screen is told once they are all in,
        judged by the marks' own times (the exchange's), not by a wait on the local clock.
        """
        held = self.held_symbols()
        marks = [self._marks.get(symbol) for symbol in held]
        if not held or any(mark is None for mark in marks):
            return False
        seconds = {mark.time_ms // 1000 for mark in marks if mark is not None}
        return len(seconds) == 1

    def _fresh(self, symbol: str, now_ms: int) -> bool:
        mark = self._marks.get(symbol)
        return mark is not None and mark_is_fresh(mark.time_ms, now_ms)

    def live_positions(self, now_ms: int) -> list[LivePosition]:
        """Each position with its uPnL from a fresh mark newer than the exchange's word, else as last told."""
        out = []
        for h in sorted(self._held.values(), key=lambda h: (h.margin_asset, h.symbol, h.side)):
            mark = self._marks.get(h.symbol)
            live = mark is not None and self._fresh(h.symbol, now_ms) and mark.time_ms >= h.time_ms
            figures: tuple[Decimal | None, Decimal, Decimal, Decimal]
            source: Source
            if mark is not None and live:
                # Estimates are cut as the screen cuts them, at the exchange's 8 places: amounts toward −∞, margin
                # toward +∞ (never more favourable than the exact figure, never more digits than the exchange's).
                notional = h.amount * mark.price
                scale = abs(notional) / abs(h.notional_at_poll) if h.notional_at_poll else Decimal(1)
                figures = (
                    mark.price,
                    cut(h.amount * (mark.price - h.entry), PLACES),
                    cut(notional, PLACES),
                    cut(h.maint_margin * scale, PLACES, rounding=ROUND_CEILING),
                )
                source, time_ms = "mark", mark.time_ms
            else:
                figures = (h.mark, h.unrealized, h.notional, h.maint_margin)
                source, time_ms = ("push" if h.source == "push" else "poll"), h.time_ms
            price, unrealized, notional, maint = figures
            out.append(
                LivePosition(
                    symbol=h.symbol,
                    side=h.side,
                    amount=h.amount,
                    entry_price=h.entry,
                    mark_price=price,
                    unrealized=unrealized,
                    notional=notional,
                    margin_asset=h.margin_asset,
                    isolated=h.isolated,
                    maint_margin=maint,
                    source=source,
                    time_ms=time_ms,
                    liquidation_price=h.liquidation,
                    break_even_price=h.break_even,
                    leverage=h.leverage,
                    adl=h.adl,
                )
            )
        return out

    def carry(self, base: AccountSnapshot, now_ms: int, at_poll: Sums | None) -> AccountSnapshot:
        """``base`` (the exchange's figures) as they stand at ``now_ms``: uPnL and totals carried by the marks, the
        totals moved from what was estimated when they were polled (``at_poll``)."""
        positions = self.live_positions(now_ms)
        balances = dict(base.balances)
        for asset, row in base.balances.items():
            balances[asset] = self._asset(row, [p for p in positions if p.margin_asset == asset and not p.isolated])
        update: dict[str, object] = {
            "balances": balances,
            "positions": tuple(positions),
            # Stale once marks had been flowing and stopped; before the first mark the poll's figures are current.
            "marks_stale": bool(positions) and self.has_marks() and not self.marks_fresh(now_ms),
        }
        update.update(self._totals(base, balances, positions, at_poll))
        return base.model_copy(update=update)

    def sums(self, base: AccountSnapshot, now_ms: int) -> Sums:
        """What the totals are moved by, as the book estimates it at ``now_ms``."""
        return Sums.of(base, dict(base.balances), self.live_positions(now_ms))

    def _asset(self, row: AssetBalance, cross: list[LivePosition]) -> AssetBalance:
        if cross and all(p.source == "mark" for p in cross):
            return row.model_copy(
                update={
                    "cross_un_pnl": sum((p.unrealized for p in cross), ZERO),
                    "upnl_source": "mark",
                    "upnl_time_ms": min(p.time_ms for p in cross),
                }
            )
        if not cross and row.asset in self._had_positions and row.upnl_source == "poll":
            # Every cross position of this asset closed since the poll (a push said so): nothing is unrealized.
            return row.model_copy(update={"cross_un_pnl": ZERO, "upnl_source": "push"})
        return row

    @staticmethod
    def _totals(
        base: AccountSnapshot, balances: dict[str, AssetBalance], positions: list[LivePosition], then: Sums | None
    ) -> dict[str, object]:
        """The exchange's totals moved by what changed since its poll: each is its last figure plus the change the
        marks (and pushes) made since, never recomputed from the rows (an exchange whose single-asset totals are not
        the USDT row's would see its wallet and ratio jump with the first mark)."""
        totals = base.totals
        if totals is None or then is None or not positions:
            return {}
        counted = [p for p in positions if _counted(base, p.margin_asset)]
        if not counted or not all(p.source == "mark" for p in counted):
            return {}
        now = Sums.of(base, balances, positions)
        wallet = now.wallet - then.wallet
        upnl = now.unrealized - then.unrealized
        live = totals.model_copy(
            update={
                "total_unrealized_profit": totals.total_unrealized_profit + upnl,
                "total_cross_un_pnl": totals.total_cross_un_pnl + now.cross_unrealized - then.cross_unrealized,
                "total_wallet_balance": totals.total_wallet_balance + wallet,
                "total_margin_balance": totals.total_margin_balance + wallet + upnl,
                "total_maint_margin": totals.total_maint_margin + now.maint_margin - then.maint_margin,
            }
        )
        return {"totals": live, "totals_source": "mark", "totals_time_ms": min(p.time_ms for p in counted)}
