"""Privacy mode: ``h`` / ``--private`` / ``private = true`` masks every amount on screen, and ``--private`` every amount
of ``snapshot`` and ``watch``; states, ages, ratios, distances, prices anyone can see and the weight stay."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal
from pathlib import Path

from services.clock import VirtualClock
from services.endpoints import Credentials
from services.formatting import MASK, fit_amount, format_amount, format_exact, mask_json
from services.settings import Settings
from services.simulator import ExchangeSimulator
from tests.helpers import clean_env, dashboard, factory, run_cli, started, table, until
from tui.app import BalanceApp
from widgets.margin_pane import MarginPane
from widgets.positions_table import PositionsTable

# -- the formatters ----------------------------------------------------------------------------------------------


def test_every_formatter_gives_one_mask_that_says_neither_size_nor_sign() -> None:
    values = (Decimal("-0.00000001"), Decimal("0"), Decimal("123456789012.5"), Decimal("7"))
    shown = {format_amount(v, 8, signed=True, private=True) for v in values}
    shown |= {fit_amount(v, 2, 12, signed=True, private=True) for v in values}
    shown |= {format_exact(v, private=True) for v in values}
    assert shown == {MASK}
    assert not re.search(r"[\d+\-]", MASK)
    assert format_amount(Decimal("-1.5"), 2, signed=True) == "-1.50"  # and only when asked


def test_json_keeps_times_weights_names_prices_and_ratios_and_masks_every_amount() -> None:
    document = {
        "schema": 3,
        "mode": "DEMO",
        "balances": {"USDT": {"asset": "USDT", "wallet_balance": "122607.35", "cross_un_pnl": "-3.1E+2"}},
        "positions": [{"symbol": "BTCUSDT", "amount": "-0.5", "mark_price": "96000.1", "liq_distance": "0.07"}],
        "weight": {"count": 32, "limit": 2400},
        "today": {"day": "2026-12-04", "assets": {"USDT": {"change": "-12.3", "unknown": 1}}},
        "key": {"warnings": ["can withdraw"]},
    }
    masked = mask_json(document)
    assert masked["balances"]["USDT"] == {"asset": "USDT", "wallet_balance": MASK, "cross_un_pnl": MASK}
    assert masked["positions"] == [{"symbol": "BTCUSDT", "amount": MASK, "mark_price": "96000.1",
                                    "liq_distance": "0.07"}]  # fmt: skip
    assert masked["weight"] == {"count": 32, "limit": 2400}
    assert masked["today"] == {"day": "2026-12-04", "assets": {"USDT": {"change": MASK, "unknown": 1}}}
    assert masked["key"] == document["key"] and masked["mode"] == "DEMO"


# -- the dashboard -----------------------------------------------------------------------------------------------

#: A figure as the screen writes it: digits with a decimal point (prices, percentages and amounts alike); not an
#: address (127.0.0.1).
FIGURE = re.compile(r"(?<![\d.])[+\-≈]?\d[\d,]*\.\d+(?![\d.])( %)?")


def screen_text(app: BalanceApp) -> str:
    """What the terminal shows, row by row, from the app's own screenshot (its text, not its colours)."""
    svg = app.export_screenshot()
    return "\n".join(html.unescape(t).replace("\xa0", " ") for t in re.findall(r"<text[^>]*>(.*?)</text>", svg))


def amounts_shown(app: BalanceApp) -> list[str]:
    """The figures on screen that are no price anyone can see and no percentage: amounts of the account."""
    screen = dashboard(app)
    snapshot = screen.snapshot
    assert snapshot is not None
    public = {format_exact(p.mark_price) for p in snapshot.positions if p.mark_price is not None}
    public |= {format_exact(p.liquidation_price) for p in snapshot.positions if p.liquidation_price}
    figures = (m.group(0).lstrip("≈") for m in FIGURE.finditer(screen_text(app)))
    return [f for f in figures if not f.endswith("%") and f not in public and not any(f in p for p in public)]


async def test_private_masks_every_amount_on_every_view_and_h_brings_them_back(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    settings = Settings(interval=2.0, private=True, history=False, alerts=["available:USDT<999999999"])
    app = BalanceApp(settings, clock=clock, exchange_factory=factory(sim, hmac_credentials))
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app)
        screen = dashboard(app)
        await until(lambda: bool(screen.positions) and bool(screen.firing), pilot=pilot)
        await sim.push_balance_change("USDT", "-25.5", reason="FUNDING_FEE", symbol="BTCUSDT")
        await until(lambda: bool(screen.tape), pilot=pilot)
        await pilot.press("t")  # the tape and the sparkline
        await pilot.pause()
        assert "PRIVATE" in screen_text(app)
        assert MASK in table(app).get_cell("USDT", "wallet").plain
        assert amounts_shown(app) == []
        # The alert's toast said before: its figure masked too (the rule is the trader's own words).
        assert any(text.startswith("ALERT available:USDT<999999999 at " + MASK) for _, text in app.said)
        await pilot.press("o")  # the positions view: size, entry, break-even, uPnL and notional masked
        await pilot.pause()
        positions = screen.query_one(PositionsTable)
        assert positions.display and positions.row_count
        assert amounts_shown(app) == []
        assert MASK in screen.query_one(MarginPane).text()

        await pilot.press("h")  # amounts back, every view
        await pilot.pause()
        wallet = screen.snapshot.balances["USDT"].wallet_balance  # type: ignore[union-attr]
        assert "PRIVATE" not in screen_text(app)
        assert amounts_shown(app)
        await pilot.press("o")
        await pilot.pause()
        assert table(app).get_cell("USDT", "wallet").plain == format_amount(wallet, 8)
        assert format_amount(wallet, 8) in screen.query_one(MarginPane).text()

        await pilot.press("h")  # and hidden again
        await pilot.pause()
        assert amounts_shown(app) == [] and "PRIVATE" in screen_text(app)  # the toasts on screen included


async def test_the_table_plans_its_widths_without_the_figures_while_private(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    app = BalanceApp(Settings(interval=2.0, history=False), clock=clock,
                     exchange_factory=factory(sim, hmac_credentials))  # fmt: skip
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app)
        await pilot.press("h")
        await pilot.pause()
        masked = table(app).planned_widths()
        await sim.push_balance_change("USDT", "900000000000")  # a whale's deposit: widths would say so
        await until(lambda: dashboard(app).tape != (), pilot=pilot)
        await pilot.pause()
        assert table(app).planned_widths() == masked
        await pilot.press("h")
        await pilot.pause()
        assert table(app).planned_widths()["wallet"] > masked["wallet"]


# -- headless ----------------------------------------------------------------------------------------------------


async def test_snapshot_and_watch_mask_only_with_private(tmp_path: Path) -> None:
    sim = ExchangeSimulator()
    api_key, secret = sim.add_hmac_key()
    await sim.start()
    try:
        env = clean_env(tmp_path, BINANCE_API_KEY=api_key, BINANCE_API_SECRET=secret)
        config = tmp_path / "config.toml"
        config.write_text("private = true\n")  # the screen's setting: headless output stays whole
        config.chmod(0o600)
        base = ("--no-history", "--ws-url", sim.ws_url, "--config", str(config))
        code, plain, err = await run_cli("snapshot", "--json", *base, env=env)
        assert code == 0, err
        assert json.loads(plain)["balances"]["USDT"]["wallet_balance"] != MASK
        code, out, err = await run_cli("snapshot", "--json", "--private", *base, env=env)
        assert code == 0, err
        document = json.loads(out)
        assert document["balances"]["USDT"]["wallet_balance"] == MASK
        assert document["totals"]["total_margin_balance"] == MASK
        assert document["positions"] and all(p["amount"] == MASK and p["mark_price"] != MASK
                                             for p in document["positions"])  # fmt: skip
        assert document["weight"]["limit"] == 2400
        code, out, err = await run_cli("snapshot", "--private", *base, env=env)
        assert code == 0, err
        assert MASK in out and not FIGURE.search(out)
        code, out, err = await run_cli("watch", "--jsonl", "--private", "--duration", "3", *base, env=env)
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        snapshots = [line for line in lines if line["type"] == "snapshot"]
        assert snapshots and all(s["balances"]["USDT"]["wallet_balance"] == MASK for s in snapshots)
    finally:
        await sim.stop()
