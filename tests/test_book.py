"""The account book, pure: polled rows, pushes, positions and marks in; one snapshot out. Plain asserts, no sockets."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from services.account import AccountState, Reply
from services.models import AccountSnapshot, AccountStatus, AccountTotals, AccountUpdate, AssetBalance, BalanceRow
from services.positions import MarkPrice, Position, PositionUpdate

D = Decimal
T0 = 1_800_000_000_000


class AccountBook:
    """The account core seen as these tests knew the book: balances and positions polled, pushes, marks — each
    given to :class:`AccountState` as the event it is, through its public calls."""

    def __init__(self) -> None:
        self.account = AccountState()
        self._pushes = 0

    def balances(self, snapshot: AccountSnapshot, *, polled: bool) -> None:
        at = snapshot.server_time_ms or snapshot.received_at_ms
        reply = Reply("poll", asked_at_ms=at, answered_at_ms=at, received_at_ms=snapshot.received_at_ms)
        if not polled:  # the wallets that moved, pushed
            moved = [r for r in snapshot.balances.values() if self._wallet(r.asset) != r.wallet_balance]
            self._push([{"a": r.asset, "wb": str(r.wallet_balance), "cw": str(r.cross_wallet_balance)} for r in moved])
        elif snapshot.totals is None:
            self.account.balance_polled([_balance_row(r) for r in snapshot.balances.values()], reply)
        else:
            status = {**snapshot.totals.model_dump(mode="json", by_alias=True),
                      "multiAssetsMargin": snapshot.multi_assets_margin,
                      "assets": [_status_row(r) for r in snapshot.balances.values()]}  # fmt: skip
            self.account.status_polled(AccountStatus.model_validate(status), reply)

    def _wallet(self, asset: str) -> Decimal | None:
        shown = self.account.snapshot(0)
        row = shown.balances.get(asset) if shown is not None else None
        return row.wallet_balance if row is not None else None

    def _push(self, balances: list[dict[str, str]], positions: tuple[PositionUpdate, ...] = (), at: int = 0) -> None:
        self._pushes += 1
        event = AccountUpdate.model_validate(
            {"e": "ACCOUNT_UPDATE", "E": at or T0 + self._pushes, "T": at or T0 + self._pushes,
             "a": {"m": "ORDER", "B": balances, "P": [p.model_dump(by_alias=True, mode="json") for p in positions]}}
        )  # fmt: skip
        self.account.account_update(event, received_at_ms=at)

    def positions_polled(self, positions: list[Position], at_ms: int) -> None:
        self.account.positions_polled(positions, Reply("v2/account.position", at_ms, at_ms, at_ms))

    def positions_pushed(self, updates: tuple[PositionUpdate, ...], event_time_ms: int) -> None:
        self._push([], updates, event_time_ms)

    def mark(self, symbol: str, price: Decimal, time_ms: int) -> None:
        self.account.mark(
            MarkPrice.model_validate({"e": "markPriceUpdate", "E": time_ms, "s": symbol, "p": str(price)})
        )

    def snapshot(self, now_ms: int) -> AccountSnapshot | None:
        return self.account.snapshot(now_ms)

    def held_symbols(self) -> set[str]:
        return self.account.positions.held_symbols()

    def marks_fresh_until(self) -> int | None:
        return self.account.positions.marks_fresh_until()

    def marks_fresh(self, now_ms: int) -> bool:
        return self.account.positions.marks_fresh(now_ms)


def _balance_row(r: AssetBalance) -> BalanceRow:
    return BalanceRow.model_validate(
        {"asset": r.asset, "balance": str(r.wallet_balance), "crossWalletBalance": str(r.cross_wallet_balance),
         "crossUnPnl": str(r.cross_un_pnl), "availableBalance": str(r.available_balance),
         "maxWithdrawAmount": str(r.max_withdraw_amount), "updateTime": r.update_time_ms}
    )  # fmt: skip


def _status_row(r: AssetBalance) -> dict[str, object]:
    z = "0"
    return {"asset": r.asset, "walletBalance": str(r.wallet_balance), "unrealizedProfit": str(r.cross_un_pnl),
            "marginBalance": str(r.wallet_balance + r.cross_un_pnl), "maintMargin": z, "initialMargin": z,
            "positionInitialMargin": z, "openOrderInitialMargin": z, "crossWalletBalance": str(r.cross_wallet_balance),
            "crossUnPnl": str(r.cross_un_pnl), "availableBalance": str(r.available_balance),
            "maxWithdrawAmount": str(r.max_withdraw_amount), "updateTime": r.update_time_ms}  # fmt: skip


def row(asset: str, wallet: str, upnl: str = "0") -> AssetBalance:
    return AssetBalance(
        asset=asset,
        wallet_balance=D(wallet),
        cross_wallet_balance=D(wallet),
        cross_un_pnl=D(upnl),
        available_balance=D(wallet),
        max_withdraw_amount=D(wallet),
    )


def totals(wallet: str, upnl: str, maint: str) -> AccountTotals:
    z = "0"
    return AccountTotals.model_validate(
        {
            "totalInitialMargin": z, "totalMaintMargin": maint, "totalWalletBalance": wallet,
            "totalUnrealizedProfit": upnl, "totalMarginBalance": str(D(wallet) + D(upnl)),
            "totalPositionInitialMargin": z, "totalOpenOrderInitialMargin": z, "totalCrossWalletBalance": wallet,
            "totalCrossUnPnl": upnl, "availableBalance": wallet, "maxWithdrawAmount": wallet,
        }
    )  # fmt: skip


def position(symbol: str, side: str, amount: str, entry: str, asset: str, up: str = "0", **extra: str) -> Position:
    return Position.model_validate(
        {"symbol": symbol, "positionSide": side, "positionAmt": amount, "entryPrice": entry, "marginAsset": asset,
         "unRealizedProfit": up, "notional": extra.get("notional", "0"), "maintMargin": extra.get("maint", "0"),
         "updateTime": T0}
    )  # fmt: skip


def book_with_positions() -> AccountBook:
    book = AccountBook()
    base = AccountSnapshot(
        balances={"USDT": row("USDT", "1000", "10"), "USDC": row("USDC", "500", "-2"), "BTC": row("BTC", "1")},
        totals=totals("1000", "10", "4"),
        multi_assets_margin=False,
        received_at_ms=T0,
    )
    book.balances(base, polled=True)
    book.positions_polled(
        [
            position("BTCUSDT", "BOTH", "0.5", "95000", "USDT", "5", notional="47505", maint="190.02"),
            position("ETHUSDT", "LONG", "3", "3300", "USDT", "3"),
            position("ETHUSDT", "SHORT", "-1", "3500", "USDT", "2"),
            position("SOLUSDC", "BOTH", "40", "180", "USDC", "-2"),
        ],
        T0,
    )
    return book


def test_without_marks_the_exchange_figures_stand() -> None:
    book = book_with_positions()
    shown = book.snapshot(T0 + 100)
    assert shown is not None
    assert shown.balances["USDT"].cross_un_pnl == D("10") and shown.balances["USDT"].upnl_source == "poll"
    assert shown.totals_source == "poll" and not shown.marks_stale  # no mark yet: the poll's figures are current
    assert [p.source for p in shown.positions] == ["poll"] * 4


def test_marks_carry_upnl_per_asset_exactly() -> None:
    book = book_with_positions()
    for symbol, price in (("BTCUSDT", "96000.5"), ("ETHUSDT", "3421.55"), ("SOLUSDC", "182.15")):
        book.mark(symbol, D(price), T0 + 1000)
    shown = book.snapshot(T0 + 1500)
    assert shown is not None
    usdt = D("0.5") * (D("96000.5") - 95000) + 3 * (D("3421.55") - 3300) + (-1) * (D("3421.55") - 3500)
    assert shown.balances["USDT"].cross_un_pnl == usdt and shown.balances["USDT"].upnl_source == "mark"
    assert shown.balances["USDC"].cross_un_pnl == 40 * (D("182.15") - 180)  # booked in USDC, not USDT
    assert shown.balances["BTC"].cross_un_pnl == 0 and shown.balances["BTC"].upnl_source == "poll"
    assert shown.totals is not None and shown.totals_source == "mark"
    assert shown.totals.total_unrealized_profit == usdt  # single-asset mode: USDT only
    assert shown.totals.total_margin_balance == 1000 + usdt
    # maintenance margin scaled with notional, inside one bracket: an estimate
    scaled = D("190.02") * (D("0.5") * D("96000.5")) / D("47505")
    assert shown.totals.total_maint_margin == 4 - D("190.02") + scaled
    assert not shown.marks_stale


def test_a_mark_older_than_the_exchange_word_is_not_used_and_stale_marks_fall_back() -> None:
    book = book_with_positions()
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDC"):
        book.mark(symbol, D("1"), T0 - 10)  # older than the poll
    shown = book.snapshot(T0 + 100)
    assert shown is not None and shown.balances["USDT"].upnl_source == "poll"
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDC"):
        book.mark(symbol, D("100000"), T0 + 100)
    assert book.snapshot(T0 + 200).balances["USDT"].upnl_source == "mark"  # type: ignore[union-attr]
    stale = book.snapshot(T0 + 100 + 3001)
    assert stale is not None and stale.marks_stale and stale.balances["USDT"].upnl_source == "poll"


def test_pushed_positions_open_change_and_close() -> None:
    book = book_with_positions()
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDC"):
        book.mark(symbol, D("100"), T0 + 10)
    opened = PositionUpdate.model_validate({"s": "XRPUSDT", "pa": "1000", "ep": "0.5", "up": "0", "ps": "BOTH"})
    book.positions_pushed((opened,), T0 + 20)
    assert "XRPUSDT" in book.held_symbols()
    shown = book.snapshot(T0 + 30)
    assert shown is not None and shown.balances["USDT"].upnl_source == "poll"  # XRP has no mark yet
    book.mark("XRPUSDT", D("0.6"), T0 + 40)
    shown = book.snapshot(T0 + 50)
    assert shown is not None
    xrp = next(p for p in shown.positions if p.symbol == "XRPUSDT")
    assert xrp.unrealized == 1000 * (D("0.6") - D("0.5")) and xrp.source == "mark"
    # every USDT position closes: nothing unrealized in USDT any more
    closes = tuple(
        PositionUpdate.model_validate({"s": s, "pa": "0", "ps": side})
        for s, side in (("BTCUSDT", "BOTH"), ("ETHUSDT", "LONG"), ("ETHUSDT", "SHORT"), ("XRPUSDT", "BOTH"))
    )
    book.positions_pushed(closes, T0 + 60)
    shown = book.snapshot(T0 + 70)
    assert shown is not None
    assert shown.balances["USDT"].cross_un_pnl == 0 and shown.balances["USDT"].upnl_source == "push"
    assert {p.symbol for p in shown.positions} == {"SOLUSDC"}


def test_a_poll_replaces_the_estimate_and_logs_the_drift(caplog: pytest.LogCaptureFixture) -> None:
    book = book_with_positions()
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDC"):
        book.mark(symbol, D("3400"), T0 + 10)
    caplog.set_level(logging.INFO, logger="balance_tui.account")
    polled = AccountSnapshot(balances={"USDT": row("USDT", "1000", "123.45")}, received_at_ms=T0 + 20)
    book.balances(polled, polled=True)
    assert any("drift USDT" in r.getMessage() for r in caplog.records)
    shown = book.snapshot(T0 + 20)
    assert shown is not None and shown.balances["USDT"].wallet_balance == 1000  # the exchange's own row now


def test_both_spellings_of_unrealized_profit_are_read() -> None:
    a = Position.model_validate({"symbol": "X", "positionAmt": "1", "unRealizedProfit": "1.5"})
    b = Position.model_validate({"symbol": "X", "positionAmt": "1", "unrealizedProfit": "1.5"})
    assert a.un_realized_profit == b.un_realized_profit == D("1.5")


def test_the_moment_marks_turn_stale_is_known_ahead() -> None:
    """The feed sleeps until then instead of looking four times a second."""
    book = book_with_positions()
    assert book.marks_fresh_until() is None  # held symbols without marks: not fresh now, no moment to wait for
    book.mark("BTCUSDT", D("96000"), T0 + 1000)
    book.mark("ETHUSDT", D("3400"), T0 + 1200)
    assert book.marks_fresh_until() is None  # SOLUSDC has none yet
    book.mark("SOLUSDC", D("180"), T0 + 1500)
    until = book.marks_fresh_until()
    assert until == T0 + 1000 + 3000 + 1  # the oldest mark decides
    assert book.marks_fresh(until - 1) and not book.marks_fresh(until)
    assert AccountBook().marks_fresh_until() is None  # nothing held: nothing to go stale


def test_marks_move_the_exchanges_totals_by_their_change_and_nothing_else() -> None:
    """The totals between polls are the exchange's last figures plus what the marks changed since, never recomputed
    from the rows: an exchange whose single-asset totals were not the USDT row's (21,002.59 beside 1,000.12) saw the
    wallet flip to the row's and the ratio go from 2 % to 41 % with the first mark."""
    book = AccountBook()
    account = totals("21002.59", "10", "420.25")
    base = AccountSnapshot(
        balances={"USDT": row("USDT", "1000.12", "10")},
        totals=account,
        multi_assets_margin=False,
        received_at_ms=T0,
        server_time_ms=T0,
    )
    book.balances(base, polled=True)
    book.positions_polled(
        [position("BTCUSDT", "BOTH", "0.5", "95000", "USDT", "10", notional="47510", maint="190")], T0
    )
    book.mark("BTCUSDT", D("95040"), T0 + 500)  # uPnL 0.5 × 40 = 20: ten more than the poll's
    shown = book.snapshot(T0 + 600)
    assert shown is not None and shown.totals is not None and shown.totals_source == "mark"
    live = shown.totals
    assert live.total_wallet_balance == D("21002.59")  # the exchange's, untouched: no push moved it
    assert live.total_unrealized_profit == D("20")  # 10 + (20 − 10)
    assert live.total_margin_balance == D("21022.59")
    maint = live.total_maint_margin - account.total_maint_margin
    assert D(0) < maint < D("0.1")  # moved with the notional, from the exchange's 420.25
    ratio = live.margin_ratio
    assert ratio is not None and D("0.0199") < ratio < D("0.0201")  # still about 2 %
    # A push moves the wallet by its change, not to the row's figure
    book.balances(base.model_copy(update={"balances": {"USDT": row("USDT", "1003.12", "10")}}), polled=False)
    pushed = book.snapshot(T0 + 700)
    assert pushed is not None and pushed.totals is not None
    assert pushed.totals.total_wallet_balance == D("21005.59")
    assert pushed.totals.total_margin_balance == D("21025.59")
