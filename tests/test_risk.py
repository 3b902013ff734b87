"""Risk at a glance: each position's distance to liquidation in its own direction, its ADL quantile, and today's
wallet change by reason (PROTOCOL.md §10), from the services up to ``watch --jsonl`` against the simulator."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.coordinate import Coordinate

from services.alerts import AlertRuleError, Alerts, parse_rule
from services.book import PositionBook
from services.clock import VirtualClock
from services.endpoints import Credentials
from services.fills import OrderTradeUpdate, Trade
from services.models import AccountConfigUpdate, AccountSnapshot, Change, parse_user_data_event
from services.positions import LivePosition, Position, PositionUpdate, liquidation_distance
from services.settings import Settings
from services.simulator import ExchangeSimulator
from services.today import DAY_MS, Today
from tests.helpers import TEST_API_KEY, TEST_SECRET, Watch, clean_env, dashboard, factory, started, table, until
from tui.app import BalanceApp
from widgets.positions_table import PositionsTable
from widgets.risk_line import RiskLine
from widgets.status_line import TotalsBar

D = Decimal
T0 = 1_790_000_000_000  # 2026-09-21 13:33:20 UTC


# -- distance to liquidation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "mark", "liquidation", "distance"),
    [
        ("0.5", "100", "93", "0.07"),  # a long: liquidated 7 % below
        ("-2", "100", "110", "0.1"),  # a short: liquidated 10 % above
        ("0.5", "100", "101", "-0.01"),  # a long whose mark fell past its price: not safe, past it
        ("-2", "100", "95", "-0.05"),  # a short whose mark rose past its price (a peer showed this one as safe)
        ("1", "100", "100", "0"),  # at the price
        ("1", "100", "0", None),  # no liquidation price: none, never 100 %
        ("1", None, "90", None),  # no mark yet
    ],
)
def test_the_distance_is_taken_in_the_positions_direction(
    amount: str, mark: str | None, liquidation: str, distance: str | None
) -> None:
    got = liquidation_distance(D(amount), None if mark is None else D(mark), D(liquidation))
    assert got == (None if distance is None else D(distance))


def test_a_distance_is_cut_toward_danger() -> None:
    # 1 − 1/1.005 = 0.0049751243...: cut down at 8 places, never rounded up to look safer
    assert liquidation_distance(D(1), D("100.5"), D(100)) == D("0.00497512")
    assert liquidation_distance(D(-1), D(3), D(2)) == D("-0.33333334")


def _position(**changes: object) -> Position:
    row = {"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "0.5", "entryPrice": "95000",
           "breakEvenPrice": "95038.1", "markPrice": "96000", "unRealizedProfit": "500", "liquidationPrice": "89000",
           "notional": "48000", "marginAsset": "USDT", "adl": 3, "updateTime": T0}  # fmt: skip
    return Position.model_validate({**row, **changes})


def test_a_pushed_change_keeps_the_polled_risk_until_the_next_poll_but_a_flip_drops_it() -> None:
    book = PositionBook()
    book.positions_polled([_position()], T0)
    [polled] = book.live_positions(T0)
    assert (polled.liquidation_price, polled.break_even_price, polled.adl) == (D(89000), D("95038.1"), 3)
    assert polled.liq_distance == D("0.07291666") and not polled.risk_estimated

    grown = PositionUpdate.model_validate({"s": "BTCUSDT", "pa": "0.7", "ep": "95100", "bep": "95140", "ps": "BOTH"})
    book.positions_pushed((grown,), T0 + 1_000)
    [pushed] = book.live_positions(T0 + 1_000)
    assert pushed.liquidation_price == D(89000) and pushed.risk_estimated  # the poll's figure, worn ≈
    assert pushed.break_even_price == D(95140)

    flipped = PositionUpdate.model_validate({"s": "BTCUSDT", "pa": "-0.2", "ep": "96000", "ps": "BOTH"})
    book.positions_pushed((flipped,), T0 + 2_000)
    [short] = book.live_positions(T0 + 2_000)
    # A long's liquidation price below the mark, read for a short, would say "past liquidation": unknown instead.
    assert short.liquidation_price is None and short.liq_distance is None


def test_a_position_opened_by_a_push_has_no_liquidation_price_yet() -> None:
    book = PositionBook()
    book.positions_pushed((PositionUpdate.model_validate({"s": "ETHUSDT", "pa": "1", "ep": "3000"}),), T0)
    [opened] = book.live_positions(T0)
    assert opened.liquidation_price is None and opened.adl is None


# -- alerts on risk and on today ------------------------------------------------------------------------------------


def _snapshot(*positions: LivePosition) -> AccountSnapshot:
    return AccountSnapshot(balances={}, positions=positions, server_time_ms=T0)


def _live(symbol: str, amount: str, mark: str, liquidation: str, adl: int, side: str = "BOTH") -> LivePosition:
    return LivePosition(symbol=symbol, side=side, amount=D(amount), entry_price=D(mark), mark_price=D(mark),
                        unrealized=D(0), notional=D(amount) * D(mark), margin_asset="USDT",
                        liquidation_price=D(liquidation), adl=adl)  # fmt: skip


def test_risk_rules_read_one_symbol_or_the_nearest() -> None:
    near = _live("BTCUSDT", "0.5", "100.5", "100", 2)
    past = _live("ETHUSDT", "-1", "100", "99", 4, side="SHORT")
    far = _live("ETHUSDT", "3", "100", "80", 1, side="LONG")
    snapshot = _snapshot(near, past, far)
    assert parse_rule("liq_distance:btcusdt<0.01").measure(snapshot) == D("0.00497512")
    assert parse_rule("liq_distance:ETHUSDT<0.01").measure(snapshot) == D("-0.01")  # the nearer of both sides
    assert parse_rule("liq_distance<0.01").measure(snapshot) == D("-0.01")  # the nearest of all
    assert parse_rule("adl:ETHUSDT>=4").measure(snapshot) == 4
    assert parse_rule("adl>=4").measure(snapshot) == 4
    assert parse_rule("liq_distance:XRPUSDT<0.1").measure(snapshot) is None
    with pytest.raises(AlertRuleError, match="did you mean liq_distance"):
        parse_rule("liq_distanse<0.1")


def test_a_risk_rule_resolves_when_its_position_closes() -> None:
    alerts = Alerts([parse_rule("liq_distance:BTCUSDT<0.01")], builtins=set())
    fired = alerts.check(_snapshot(_live("BTCUSDT", "1", "100.5", "100", 2)), None, T0)
    assert [(e.state, e.value) for e in fired] == [("firing", D("0.00497512"))]
    closed = alerts.check(_snapshot(), None, T0 + 1_000)
    assert [(e.state, e.detail) for e in closed] == [("resolved", "no longer held")]


def _change(at: int, delta: str, reason: str, asset: str = "USDT") -> Change:
    return Change(at, asset, D(1000), D(1000) + D(delta), D(delta), reason, None, "push")


def test_today_splits_the_wallet_change_by_reason_and_adds_up() -> None:
    today = Today()
    today.change(_change(T0 - 5, "-9", "FUNDING_FEE"))  # before counting started: not counted, not invented
    today.start(T0)
    today.change(_change(T0 + 1, "-3.14", "FUNDING_FEE"))
    today.change(_change(T0 + 2, "-9.20", "ORDER"))  # realized −8 and commission 1.20, settled together
    today.trade(Trade(T0 + 2, "BTCUSDT", 7, D("-8"), "USDT", D("-1.20"), "USDT"))
    today.trade(Trade(T0 + 3, "BTCUSDT", 8, D(0), "USDT", D("-0.001"), "BNB"))  # commission paid in BNB
    today.change(_change(T0 + 3, "-0.001", "ORDER", asset="BNB"))
    today.change(_change(T0 + 4, "500", "DEPOSIT"))
    view = today.at(T0 + 10)
    usdt = view.figures("USDT")
    assert (usdt.funding, usdt.realized, usdt.commission) == (D("-3.14"), D("-8"), D("-1.20"))
    assert usdt.pnl == D("-12.34") and usdt.other == D(500) and usdt.change == D("487.66")
    assert view.figures("BNB").commission == D("-0.001") and view.figures("BNB").other == 0
    assert view.since_ms == T0


def test_today_starts_again_at_midnight_utc_even_when_nothing_happens() -> None:
    today = Today()
    today.start(T0)
    today.change(_change(T0 + 1, "-1", "FUNDING_FEE"))
    midnight = T0 - T0 % DAY_MS + DAY_MS
    assert today.at(midnight - 1).figures("USDT").funding == D(-1)
    after = today.at(midnight)
    assert after.since_ms == midnight and after.assets == {}
    today.change(_change(midnight - 10, "-2", "FUNDING_FEE"))  # yesterday's, arriving late: not today's
    assert today.at(midnight + 5).assets == {}


def test_today_rules_read_an_asset_or_usdt() -> None:
    today = Today()
    today.start(T0)
    today.change(_change(T0 + 1, "-25", "FUNDING_FEE"))
    view = today.at(T0 + 2)
    assert parse_rule("today_funding<-20").measure(_snapshot(), view) == D(-25)
    assert parse_rule("today_pnl:USDC<-20").measure(_snapshot(), view) == 0
    assert parse_rule("today_pnl<-20").measure(_snapshot(), None) is None


def test_a_fill_reads_its_realized_pnl_and_commission() -> None:
    raw = {"e": "ORDER_TRADE_UPDATE", "E": T0 + 2, "T": T0 + 1,
           "o": {"s": "BTCUSDT", "S": "SELL", "x": "TRADE", "X": "FILLED", "N": "USDT", "n": "0.01920000",
                 "T": T0 + 1, "t": 42, "rp": "12.50000000", "ps": "BOTH", "l": "0.001", "L": "96000"}}  # fmt: skip
    event = parse_user_data_event(raw)
    assert isinstance(event, OrderTradeUpdate)
    trade = Trade.of(event, "USDT")
    assert trade == Trade(T0 + 1, "BTCUSDT", 42, D("12.5"), "USDT", D("-0.0192"), "USDT")
    new_order = {**raw, "o": {"s": "BTCUSDT", "x": "NEW", "X": "NEW"}}
    assert Trade.of(OrderTradeUpdate.model_validate(new_order), "USDT") is None  # moved no wallet


# -- watch --jsonl against the simulator ----------------------------------------------------------------------------

RULES = ("--alert", "liq_distance:BTCUSDT<0.01", "--alert", "liq_distance:ETHUSDT<0.01", "--alert", "adl:ETHUSDT>=4")


async def _watch_risk(home: Path, *, near: bool, adl: int) -> tuple[list[str], list[dict[str, Any]]]:
    """A watch against a simulator whose BTCUSDT long and ETHUSDT short sit near (or 20 % from) liquidation."""
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    marks = simulator.account.marks
    btc, eth = marks["BTCUSDT"], marks["ETHUSDT"]
    # near: the long 0.5 % above its price, the short's mark already past its price; far: both 20 % away.
    simulator.user_data.set_risk("BTCUSDT", "BOTH", liquidation=(btc / D("1.005") if near else btc * D("0.8")))
    simulator.user_data.set_risk("ETHUSDT", "SHORT", liquidation=(eth - 20 if near else eth * D("1.2")), adl=adl)
    simulator.user_data.set_risk("ETHUSDT", "LONG", liquidation=eth * D("0.8"), adl=1)
    sent = {(row["symbol"], row["positionSide"]): row for row in simulator.account.position_rows(v2=True)}
    env = clean_env(home, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
    async with simulator:
        watch = await Watch.start("--ws-url", simulator.ws_url, *RULES, env=env)
        try:
            await watch.until(lambda: any(line["positions"] for line in watch.of_type("snapshot")))
            await watch.until(lambda: len(watch.of_type("snapshot")) >= 3)  # the rules looked more than once
        finally:
            code, err = await watch.stop()
    assert code == 143, err
    firing = [line["rule"] for line in watch.of_type("alert") if line["state"] == "firing"]
    last = [line for line in watch.of_type("snapshot") if line["positions"]][-1]
    for position in last["positions"]:
        exchange = sent[(position["symbol"], position["side"])]
        assert position["liquidation_price"] == exchange["liquidationPrice"]  # as the exchange sent it
    return firing, last["positions"]


async def test_watch_fires_for_a_long_near_and_a_short_past_its_liquidation(tmp_path: Path) -> None:
    firing, positions = await _watch_risk(tmp_path, near=True, adl=4)
    assert sorted(firing) == sorted(RULES[1::2])
    short = next(p for p in positions if p["side"] == "SHORT")
    assert D(short["liq_distance"]) < 0  # past it, said as such


async def test_watch_fires_nothing_with_the_positions_far_from_liquidation(tmp_path: Path) -> None:
    firing, positions = await _watch_risk(tmp_path, near=False, adl=2)
    assert firing == []
    assert all(D(p["liq_distance"]) >= D("0.16") for p in positions if p["liq_distance"] is not None)


async def test_watch_counts_today_s_funding_as_pushed(tmp_path: Path) -> None:
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)

    def changes() -> list[dict[str, Any]]:
        return [line for line in watch.of_type("change") if line["reason"] == "FUNDING_FEE"]

    async with simulator:
        watch = await Watch.start("--ws-url", simulator.ws_url, env=env)
        try:
            await watch.until(lambda: watch.stream_connected() and bool(simulator.user_data.connections()))
            await watch.until(lambda: bool(watch.of_type("snapshot")))
            funding = ["-1.25", "-0.5", "0.125"]
            for fee in funding:
                await simulator.user_data.push_balance_change("USDT", fee, reason="FUNDING_FEE", symbol="BTCUSDT")
            await simulator.user_data.fill("BTCUSDT", "BOTH", "0.4", "96500", realized="75.15", commission="1.93")

            def counted() -> bool:
                today = watch.of_type("snapshot")[-1]["today"]["assets"].get("USDT", {})
                return len(changes()) == 3 and today.get("realized") == "75.15000000"

            await watch.until(counted)
        finally:
            code, err = await watch.stop()
    assert code == 143, err
    today = watch.of_type("snapshot")[-1]["today"]
    usdt = today["assets"]["USDT"]
    pushed = sum((D(line["delta"]) for line in changes()), D(0))
    assert D(usdt["funding"]) == pushed == sum(map(D, funding))
    assert D(usdt["commission"]) == D("-1.93") and D(usdt["other"]) == 0
    assert D(usdt["pnl"]) == pushed + D("75.15") - D("1.93")
    assert today["since_ms"] is not None and [t["trade_id"] for t in watch.of_type("trade")] == [1]


def test_the_simulated_cross_liquidation_price_is_where_margin_meets_maintenance() -> None:
    simulator = ExchangeSimulator()
    account = simulator.account
    account.assets["USDT"].wallet = D(5000)
    for position in account.positions.values():
        position.liquidation = None  # computed, as for a cross position
    long = account.positions[("BTCUSDT", "BOTH")]
    price = account.liquidation_price(long)
    assert 0 < price < account.marks["BTCUSDT"]
    account.marks["BTCUSDT"] = price  # at that mark the asset's margin balance is its maintenance margin
    usdt = account.assets["USDT"]
    assert abs(usdt.wallet + account.unrealized(usdt) - account.maint_margin(usdt)) < D("0.000001")
    account.assets["USDT"].wallet = D(10**9)
    assert account.liquidation_price(long) == 0  # a wallet that covers it: no liquidation price ("0")


# -- on screen ------------------------------------------------------------------------------------------------------


@pytest.fixture
def app(sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials) -> BalanceApp:
    sim.user_data.set_risk("ETHUSDT", "SHORT", liquidation=sim.account.marks["ETHUSDT"] - 20, adl=4)
    return BalanceApp(Settings(interval=2.0), clock=clock, exchange_factory=factory(sim, hmac_credentials))


def _rows(positions: PositionsTable) -> list[str]:
    return [str(positions.coordinate_to_cell_key(Coordinate(i, 0)).row_key.value) for i in range(positions.row_count)]


async def test_o_shows_the_positions_nearest_liquidation_first_and_back(app: BalanceApp) -> None:
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app)
        screen = dashboard(app)
        positions, balances = screen.query_one(PositionsTable), table(app)
        await until(pilot=pilot, predicate=lambda: len(screen.positions) == 4)
        assert not positions.display and balances.display
        await pilot.press("o")
        assert positions.display and not balances.display and positions.has_focus
        assert _rows(positions) == ["ETHUSDT/SHORT", "BTCUSDT/BOTH", "ETHUSDT/LONG", "SOLUSDC/BOTH"]
        assert positions.get_cell("ETHUSDT/SHORT", "distance").plain == "PAST LIQ."
        assert positions.get_cell("SOLUSDC/BOTH", "distance").plain == "—"  # "0": no liquidation price, not 100 %
        assert positions.get_cell("ETHUSDT/SHORT", "adl").plain == "■■■■ 4"
        assert "ETHUSDT SHORT PAST LIQ." in screen.query_one(RiskLine).text()
        await pilot.press("s")  # the balance table's sort is not a key of this view
        assert balances.sort_key == "asset"
        await pilot.press("o")
        assert balances.display and not positions.display
        await pilot.press("s")
        assert balances.sort_key != "asset"


async def test_a_fill_and_a_funding_fee_show_on_the_today_line(app: BalanceApp, sim: ExchangeSimulator) -> None:
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app)
        screen = dashboard(app)
        line = screen.query_one(RiskLine)
        # the stream open on both ends: the client says so, and the exchange has it among its subscribers
        await until(pilot=pilot, predicate=lambda: bool(sim.user_data.connections()) and screen.status is not None
                    and screen.status.stream in ("unproven", "live"))  # fmt: skip
        await sim.user_data.fill("ETHUSDT", "LONG", "2.5", "3450", realized="75", commission="0.69")
        await sim.user_data.push_balance_change("USDT", "-3.14", reason="FUNDING_FEE", symbol="ETHUSDT")
        await until(pilot=pilot, predicate=lambda: "funding -3.14" in line.text())
        assert "+71.17 USDT · funding -3.14 · fees -0.69 · realized +75.00" in line.text()


def test_a_leverage_change_pushed_shows_beside_the_position_and_outlives_the_next_poll() -> None:
    from services.account import AccountState, Reply

    state = AccountState()
    reply = Reply("v2/account.position", T0, T0, T0)
    state.positions_polled([_position()], reply)
    event = parse_user_data_event({"e": "ACCOUNT_CONFIG_UPDATE", "E": T0, "T": T0, "ac": {"s": "BTCUSDT", "l": 25}})
    assert isinstance(event, AccountConfigUpdate) and event.leverage == 25
    state.config_update(event)
    assert [p.leverage for p in state.positions.live_positions(T0)] == [25]
    state.positions_polled([_position()], Reply("v2/account.position", T0 + 1, T0 + 1, T0 + 1))
    assert [p.leverage for p in state.positions.live_positions(T0 + 1)] == [25]


async def test_a_risk_rule_firing_marks_the_risk_line_not_the_totals(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    sim.user_data.set_risk("ETHUSDT", "SHORT", liquidation=sim.account.marks["ETHUSDT"] - 20)
    settings = Settings(interval=2.0, alerts=["liq_distance:ETHUSDT<0.01"])
    app = BalanceApp(settings, clock=clock, exchange_factory=factory(sim, hmac_credentials))
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app)
        screen = dashboard(app)
        await until(pilot=pilot, predicate=lambda: screen.query_one(RiskLine).has_class("-alert"))
        assert [e.rule for e in screen.firing] == ["liq_distance:ETHUSDT<0.01"]
        assert not screen.query_one(TotalsBar).has_class("-alert")
