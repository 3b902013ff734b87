"""Alerts: the rule grammar, firing once and resolving once with hysteresis, the built-ins, and where they show."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from services.alerts import AlertRuleError, Alerts, parse_rule
from services.clock import VirtualClock
from services.endpoints import Credentials
from services.models import AccountSnapshot, AccountTotals, AssetBalance, ConnectionStatus, LinkState
from services.settings import Settings
from services.simulator import ExchangeSimulator
from tests.helpers import (
    TEST_API_KEY,
    TEST_SECRET,
    Watch,
    clean_env,
    dashboard,
    factory,
    run_cli,
    started,
    table,
    until,
)
from tui.app import BalanceApp
from tui.screens.alerts import AlertsScreen
from widgets.status_line import StatusLine

T0 = 1_800_000_000_000


def snapshot(available: str, *, received: int = T0, ratio_maint: str = "1") -> AccountSnapshot:
    row = AssetBalance(
        asset="USDT",
        wallet_balance=Decimal(1000),
        cross_wallet_balance=Decimal(1000),
        cross_un_pnl=Decimal(0),
        available_balance=Decimal(available),
        max_withdraw_amount=Decimal(available),
    )
    z = "0"
    totals = AccountTotals.model_validate(
        {"totalInitialMargin": z, "totalMaintMargin": ratio_maint, "totalWalletBalance": "1000",
         "totalUnrealizedProfit": z, "totalMarginBalance": "1000", "totalPositionInitialMargin": z,
         "totalOpenOrderInitialMargin": z, "totalCrossWalletBalance": "1000", "totalCrossUnPnl": z,
         "availableBalance": available, "maxWithdrawAmount": available}
    )  # fmt: skip
    return AccountSnapshot(balances={"USDT": row}, totals=totals, received_at_ms=received)


LIVE = ConnectionStatus(state=LinkState.LIVE, endpoint="x", since_ms=T0, stream="live")


def test_rules_parse_with_exact_values() -> None:
    rule = parse_rule(" available:usdt <= 500.00000001 ")
    assert (rule.metric, rule.asset, rule.op, rule.value) == ("available", "USDT", "<=", Decimal("500.00000001"))
    assert parse_rule("margin_ratio>0.8").asset is None
    assert parse_rule("upnl:USDT<-1000").value == Decimal(-1000)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("available USDT 500", "not <metric>[:<ASSET>] <op> <value>"),
        ("availble:USDT<500", "did you mean available"),
        ("available<500", "per asset"),
        ("margin_ratio:USDT>0.8", "whole account"),
        ("available:USDT<lots", "'lots' is not a number"),
        ("available:USDT<inf", "not a finite number"),
        ("available:USDT=<500", "not <metric>"),
    ],
)
def test_bad_rules_say_which_and_why(text: str, says: str) -> None:
    with pytest.raises(AlertRuleError) as info:
        parse_rule(text)
    assert says in str(info.value) and text in str(info.value)


def test_a_rule_fires_once_resolves_once_and_does_not_flap() -> None:
    alerts = Alerts([parse_rule("available:USDT<700")], builtins=set(), rearm_after=60)
    assert alerts.check(snapshot("800"), LIVE, T0) == []
    [fired] = alerts.check(snapshot("699.99"), LIVE, T0 + 1000)
    assert fired.state == "firing" and fired.value == Decimal("699.99") and fired.asset == "USDT"
    assert alerts.check(snapshot("650"), LIVE, T0 + 2000) == []  # still holding: once
    [resolved] = alerts.check(snapshot("701"), LIVE, T0 + 3000)
    assert resolved.state == "resolved"
    # wobbling on the line within the re-arm time: quiet
    assert alerts.check(snapshot("699"), LIVE, T0 + 4000) == []
    assert alerts.check(snapshot("701"), LIVE, T0 + 5000) == []
    # holding past the re-arm time after the resolution: it fires again
    assert [e.state for e in alerts.check(snapshot("600"), LIVE, T0 + 3000 + 60_000)] == ["firing"]


def test_a_rule_that_never_holds_never_fires_and_stale_data_is_said() -> None:
    alerts = Alerts([parse_rule("margin_ratio>0.99")], builtins=set())
    for i in range(100):
        assert alerts.check(snapshot(str(1000 - i)), LIVE, T0 + i * 1000) == []
    stale = Alerts([parse_rule("available:USDT<700")], builtins=set())
    [event] = stale.check(snapshot("1", received=T0), LIVE, T0 + 120_000)
    assert event.stale  # fired on data two minutes old, and says so


def test_each_built_in_alert() -> None:
    alerts = Alerts([], silent_after=120)
    assert alerts.check(snapshot("1000"), LIVE, T0) == []
    [call] = alerts.check(snapshot("1000"), LIVE, T0 + 1, margin_call=True)
    assert call.rule == "margin_call"
    assert [e.state for e in alerts.check(snapshot("1000"), LIVE, T0 + 2)] == ["resolved"]
    silent = LIVE.model_copy(update={"stream": "silent"})
    assert alerts.check(snapshot("1000", received=T0 + 3), silent, T0 + 3) == []
    assert [e.rule for e in alerts.check(snapshot("1000", received=T0 + 120_003), silent, T0 + 120_003)] == [
        "stream_silent"
    ]
    assert [e.rule for e in alerts.check(snapshot("1000", received=T0), LIVE, T0 + 200_000)] == [
        "stream_silent",  # resolved: the stream is live again
        "stale",
    ]
    rejected = LIVE.model_copy(update={"state": LinkState.CREDENTIALS_REJECTED})
    assert "credentials" in [
        e.rule for e in alerts.check(snapshot("1000", received=T0 + 200_000), rejected, T0 + 200_000)
    ]
    limited = LIVE.model_copy(update={"state": LinkState.RATE_LIMITED})
    assert "rate_limited" in [
        e.rule for e in alerts.check(snapshot("1000", received=T0 + 200_000), limited, T0 + 200_000)
    ]
    off = Alerts([], builtins={"credentials"})
    assert off.check(snapshot("1000"), LIVE, T0, margin_call=True) == []  # margin_call switched off


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("available USDT 500", "not <metric>"),
        ("margin:USDT<1", "unknown metric"),
        ("available:USDT<abc", "not a number"),
    ],
)
async def test_a_bad_rule_on_the_command_line_is_one_line_and_exit_2(tmp_path: Path, rule: str, says: str) -> None:
    (tmp_path / "config").mkdir()
    code, _, err = await run_cli("--demo", "watch", "--jsonl", "--alert", rule, env=clean_env(tmp_path))
    assert code == 2 and says in err and rule in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


async def test_watch_prints_one_firing_line_as_usdt_drains_and_nothing_for_a_rule_that_never_holds(
    tmp_path: Path,
) -> None:
    (tmp_path / "config").mkdir()
    sim = ExchangeSimulator()  # real clock: the CLI runs in another process
    sim.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    sim.account.assets["USDT"].wallet = Decimal(7600)  # available ≈ 7600 − initial margin of the demo positions
    async with sim:
        env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
        watch = await Watch.start(
            "--ws-url", sim.ws_url, "--alert", "available:USDT<700", "--alert", "margin_ratio>0.99", env=env
        )
        await watch.until(watch.stream_connected)
        for _ in range(6):  # drain, 250 USDT at a time, pushed as the exchange would; available comes with a poll
            wallet = (await sim.push_balance_change("USDT", "-250"))["a"]["B"][0]["wb"]

            def polled(w: object = wallet) -> bool:
                return _polled_wallet(watch) == w

            await watch.until(polled)
        await watch.until(lambda: bool(watch.of_type("alert")))
        code, err = await watch.stop()
    assert code == 143, err  # ended by the test, as kill does
    alerts = watch.of_type("alert")
    assert [(a["rule"], a["state"]) for a in alerts] == [("available:USDT<700", "firing")]
    value = str(alerts[0]["value"])
    assert Decimal(value) < 700 and alerts[0]["asset"] == "USDT"
    assert value == format(Decimal(value), "f")  # an exact decimal string


def _polled_wallet(watch: Watch) -> object:
    polls = [line for line in watch.of_type("snapshot") if line["cause"] == "poll"]
    return polls[-1]["balances"]["USDT"]["wallet_balance"] if polls else None


async def test_the_dashboard_calls_the_trader(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    settings = Settings(interval=2.0, alerts=["available:USDT<200000"])
    app = BalanceApp(settings, clock=clock, exchange_factory=factory(sim, hmac_credentials))
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app)
        await until(lambda: bool(dashboard(app).firing), pilot=pilot)
        assert bells and any("ALERT available:USDT<200000" in text for _, text in app.said)
        assert "⚑ 1 ALERT" in str(dashboard(app).query_one(StatusLine).render())
        assert table(app).get_cell("USDT", "asset").plain.startswith("⚑")  # the row, by sign not colour alone
        await pilot.press("exclamation_mark")
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("escape")


def test_an_asset_not_held_is_allowed_and_warned_of_once(caplog: pytest.LogCaptureFixture) -> None:
    alerts = Alerts([parse_rule("available:DOGE<5")], builtins=set())
    for i in range(3):
        assert alerts.check(snapshot("1000"), LIVE, T0 + i) == []
    assert [r.getMessage() for r in caplog.records if "DOGE" in r.getMessage()] == [
        "alert available:DOGE<5: the account holds no DOGE (yet)"
    ]


def test_notify_without_a_desktop_says_so_once_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from services.alerts import AlertEvent
    from tui.notify import Notifier

    for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    err = io.StringIO()
    notifier = Notifier(True, err=err)
    notifier.alert(AlertEvent("available:USDT<700", "firing", T0, Decimal(1)))
    notifier.alert(AlertEvent("available:USDT<700", "resolved", T0, Decimal(800)))
    assert err.getvalue().count("\n") == 1 and "no desktop" in err.getvalue()


def test_stopped_marks_make_only_mark_figures_stale() -> None:
    alerts = Alerts([parse_rule("available:USDT<700"), parse_rule("upnl:USDT<1")], builtins=set())
    marks_stopped = snapshot("600").model_copy(update={"marks_stale": True})
    events = {e.rule: e for e in alerts.check(marks_stopped, LIVE, T0)}
    assert not events["available:USDT<700"].stale  # the exchange's own figure, current
    assert events["upnl:USDT<1"].stale  # computed from marks that stopped


def test_a_quiet_account_on_a_live_stream_is_current_between_its_reconcile_polls() -> None:
    """With the stream live, polls come once a minute by plan: the numbers between are current (the built-in alert
    fired 30 s after every reconcile poll while the status line said LIVE · push live)."""
    alerts = Alerts([parse_rule("available:USDT<700")])
    streaming = LIVE.model_copy(update={"stream": "live", "interval_ms": 60_000})
    for second in range(0, 300):  # five minutes, a reconcile poll each minute
        polled = T0 + (second // 60) * 60_000
        events = alerts.check(snapshot("600", received=polled), streaming, T0 + second * 1000)
        assert all(e.rule != "stale" for e in events), second
        assert all(not e.stale for e in events)  # the rule's figure was current when it fired
    # The same numbers with the polls stopped: STALE after three paces (3 min), the alert 30 s after that.
    fired = [
        second
        for second in range(0, 400)
        for e in alerts.check(snapshot("600", received=T0), streaming, T0 + second * 1000)
        if e.rule == "stale" and e.state == "firing"
    ]
    assert fired == [211]


async def test_the_dashboard_raises_no_stale_alert_on_a_quiet_account_with_a_live_stream(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    sim.account.positions.clear()  # nothing held: no marks to wait for, polls slow to the reconcile
    app = BalanceApp(Settings(interval=2.0), clock=clock, exchange_factory=factory(sim, hmac_credentials))
    async with app.run_test() as pilot:
        await started(pilot, app)
        screen = dashboard(app)
        await until(lambda: screen.status is not None and screen.status.interval_ms == 60_000, clock=clock, pilot=pilot)
        start = clock.monotonic()
        # Five minutes in 10 s steps, each long enough in real time for the screen's own timer to look.
        while clock.monotonic() - start < 300:
            await clock.advance(10, step=0.5)
            await pilot.pause(0.3)
            assert not screen.stale
        assert [e.rule for e in screen.session.alert_log] == []
        assert sum(m.endswith("account.status") for _, m in sim.requests) >= 5  # it did reconcile meanwhile


async def test_the_dashboard_takes_notify_too_and_says_in_a_toast_when_there_is_no_desktop(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """--notify was read by watch only: the dashboard showed its alerts in toasts and never on the desktop."""
    for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    app = BalanceApp(Settings(notify=True, history=False), clock=VirtualClock())
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.dashboard.notifier is not None
        assert [text for _, text in app.said if "no desktop" in text] != []
    assert "no desktop" not in capfd.readouterr().err  # stderr is the screen: nothing printed over it
