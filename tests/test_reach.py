"""Reach: alerts to the trader's destinations (apprise), the daily summary, Prometheus metrics, and ``serve``.

Receivers are real HTTP servers on loopback (apprise's ``json://`` posts to them); metrics are scraped over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.alerts import AlertEvent, Alerts, parse_rule
from services.clock import SYSTEM_CLOCK, VirtualClock
from services.delivery import Deliveries, apprise_sender
from services.endpoints import Credentials
from services.events import SnapshotEvent, StatusEvent
from services.fills import Trade
from services.formatting import format_amount
from services.history import HistoryRecorder, HistoryStore
from services.metrics import MetricsServer, SessionCollector
from services.models import AccountSnapshot, AssetBalance, Change, ConnectionStatus, LinkState
from services.reach import Reach
from services.session import Session
from services.settings import ConfigError, Settings, load_settings
from services.simulator import ExchangeSimulator
from services.summary import DailySchedule, alert_message
from tests.helpers import CLI, TEST_API_KEY, TEST_SECRET, clean_env, dashboard, factory, started, table, until
from tui.app import BalanceApp

T0 = 1_796_300_000_000  # 2026-12-03 12:13:20 UTC


class Receiver:
    """A webhook receiver on loopback: keeps each JSON body posted; ``hang`` answers nothing, ``fail`` says 500."""

    def __init__(self, *, hang: bool = False, fail: bool = False) -> None:
        self.hang, self.fail = hang, fail
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0  # posts begun (a hanging receiver keeps none of them)
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    async def __aenter__(self) -> Receiver:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)  # fmt: skip
            body = await reader.readexactly(length)
            self.requests += 1
            if self.hang:
                await asyncio.sleep(3600)
            self.bodies.append(json.loads(body))
            status = b"500 Internal Server Error" if self.fail else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- delivery -------------------------------------------------------------------------------------------------------


async def test_a_failing_destination_is_said_once_and_again_when_it_works() -> None:
    results = [False] * 8 + [True]  # two messages fail every try; the third gets through
    troubles: list[str | None] = []

    def sender(title: str, body: str) -> bool:
        return results.pop(0)

    deliveries = Deliveries(sender, clock=SYSTEM_CLOCK, count=1, on_trouble=troubles.append, first_retry=0.001)
    task = asyncio.create_task(deliveries.run())
    try:
        for n in range(3):
            deliveries.send(f"alert {n}", "body")
        await until(lambda: deliveries.sent == 1)
    finally:
        task.cancel()
    assert deliveries.failed == 2
    assert len(troubles) == 2 and troubles[0] is not None and "not delivered after 4 tries" in troubles[0]
    assert troubles[1] is None  # working again: said, once


async def test_a_hanging_destination_holds_neither_the_loop_nor_later_messages_past_the_timeout() -> None:
    release = threading.Event()
    seen: list[str] = []

    def sender(title: str, body: str) -> bool:
        if title == "first":
            release.wait(10)  # a receiver that never answers
        seen.append(title)
        return True

    deliveries = Deliveries(sender, clock=SYSTEM_CLOCK, count=1, attempts=1, timeout=0.2)
    task = asyncio.create_task(deliveries.run())
    loop = asyncio.get_running_loop()
    try:
        deliveries.send("first", "")
        deliveries.send("second", "")
        started_at, ticks = loop.time(), 0
        while "second" not in seen:
            await asyncio.sleep(0.01)  # the loop keeps its pace meanwhile
            ticks += 1
        assert ticks >= 10 and loop.time() - started_at < 2
    finally:
        release.set()
        task.cancel()


def test_a_url_apprise_cannot_read_is_refused_without_being_said() -> None:
    with pytest.raises(Exception, match=r"notification URL 2 of 2 \(nosuch://…\)") as raised:
        apprise_sender(["json://127.0.0.1:9/x", "nosuch://token-SECRET-123@host"])
    assert "SECRET" not in str(raised.value)


def test_a_config_file_holding_a_notification_url_must_be_private(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('notify_urls = ["tgram://123456:TOKEN-SECRET/987"]\n')
    config.chmod(0o644)
    with pytest.raises(ConfigError) as raised:
        load_settings({}, config_path=config)
    assert "TOKEN-SECRET" not in str(raised.value)
    config.chmod(0o600)
    settings = load_settings({}, config_path=config)
    assert "TOKEN-SECRET" not in repr(settings) and len(settings.notify_urls) == 1


def test_an_alert_message_names_the_account_rule_figure_time_and_staleness() -> None:
    event = AlertEvent("available:USDT<500", "firing", T0, Decimal("499.12000000"), "USDT", stale=True)
    message = alert_message(event, "bot1")
    assert message.title == "balance-tui bot1: ALERT available:USDT<500 at 499.12000000 (on stale data)"
    assert "account: bot1" in message.body and "when: 2026-12-03 12:13:20 UTC" in message.body
    assert "on stale data" in message.body


# -- metrics --------------------------------------------------------------------------------------------------------


def _snapshot() -> AccountSnapshot:
    row = AssetBalance(asset="USDT", wallet_balance=Decimal("122607.35137903"), cross_wallet_balance=Decimal(1),
                       cross_un_pnl=Decimal("-3.5"), available_balance=Decimal(600), max_withdraw_amount=Decimal(600),
                       upnl_source="mark")  # fmt: skip
    return AccountSnapshot(balances={"USDT": row}, server_time_ms=T0, received_at_ms=T0)


async def test_metrics_read_the_session_at_each_scrape() -> None:
    clock = VirtualClock(start_ms=T0)
    session = Session(Alerts([parse_rule("available:USDT<700")], builtins={"stale"}), clock)
    live = ConnectionStatus(state=LinkState.LIVE, endpoint="ws://x/ws", since_ms=T0, last_success_ms=T0)
    session.apply(StatusEvent(live))
    session.apply(SnapshotEvent(_snapshot()))
    server = MetricsServer(f"127.0.0.1:{free_port()}")
    server.add(SessionCollector("main", session, clock))
    server.start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(url)).text
            assert 'balance_tui_wallet_balance{account="main",asset="USDT"} 122607.35137903' in text
            assert 'balance_tui_unrealized_pnl{account="main",asset="USDT",source="mark"} -3.5' in text
            assert 'balance_tui_alert_firing{account="main",rule="available:USDT<700"} 1.0' in text
            assert 'balance_tui_link_up{account="main",link="api"} 1.0' in text
            session.apply(StatusEvent(live.model_copy(update={"state": LinkState.RECONNECTING})))
            await clock.advance(12)
            text = (await http.get(url)).text
            assert 'balance_tui_link_up{account="main",link="api"} 0.0' in text
            assert 'balance_tui_seconds_since_last_reply{account="main"} 12.0' in text
    finally:
        server.stop()


# -- the daily summary ----------------------------------------------------------------------------------------------


def test_the_daily_summary_is_due_once_a_day_at_its_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9: 08:00 there is 23:00 UTC the day before
    time.tzset()
    try:
        schedule = DailySchedule("08:00")
        eight = 1_796_338_800_000  # 2026-12-03 23:00:00 UTC = 2026-12-04 08:00 in Tokyo
        assert not schedule.due(eight - 60_000)  # plans
        assert not schedule.due(eight - 1)
        assert schedule.due(eight) and not schedule.due(eight + 60_000)
        assert schedule.due(eight + 86_400_000)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_daily_summary_says_yesterday_by_reason_from_the_history(tmp_path: Path) -> None:
    clock = VirtualClock(start_ms=T0)  # 2026-12-03: yesterday is 2026-12-02
    store = HistoryStore(tmp_path)
    history = HistoryRecorder(store, "acct")
    day = T0 - T0 % 86_400_000 - 86_400_000
    for at, delta, reason, symbol in ((day + 8 * 3600_000, "-3.14", "FUNDING_FEE", "BTCUSDT"),
                                      (day + 9 * 3600_000, "-9.20", "ORDER", None),
                                      (day - 5, "-99", "FUNDING_FEE", "BTCUSDT")):  # fmt: skip
        history.change(Change(at, "USDT", Decimal(100), Decimal(100) + Decimal(delta), Decimal(delta), reason,
                              symbol, "push"))  # fmt: skip
    history.trade(Trade(day + 9 * 3600_000, "BTCUSDT", 1, Decimal(-8), "USDT", Decimal("-1.20"), "USDT"))
    session = Session(Alerts([], builtins=set()), clock, history)
    reach = Reach(session, account="acct", clock=clock, urls=["json://127.0.0.1:9/x"], daily_at="08:00")
    message = reach.daily_message()
    lines = message.body.splitlines()
    assert message.title == "balance-tui acct: daily summary for 2026-12-02"
    assert lines[1] == "-12.34 USDT · funding -3.14 · fees -1.20 · realized -8.00"
    assert lines[2] == "funding: BTCUSDT -3.14000000 USDT"
    assert lines[3] == "now: no figures yet"
    store.close()


# -- end to end -----------------------------------------------------------------------------------------------------


@pytest.fixture
async def draining() -> AsyncIterator[ExchangeSimulator]:
    """A live simulator (the real clock) whose USDT available sits above 700 and is drained by pushes."""
    simulator = ExchangeSimulator()
    simulator.add_hmac_key(TEST_API_KEY, TEST_SECRET)
    simulator.account.positions.clear()  # available = wallet: the line is crossed by the drain alone
    simulator.account.assets["USDT"].wallet = Decimal("1000")
    async with simulator:
        yield simulator


async def test_serve_sends_the_alert_serves_metrics_goes_down_with_the_exchange_and_ends_on_sigterm(
    draining: ExchangeSimulator, tmp_path: Path
) -> None:
    metrics_port = free_port()
    async with Receiver() as receiver:
        env = clean_env(tmp_path, BINANCE_API_KEY=TEST_API_KEY, BINANCE_API_SECRET=TEST_SECRET)
        process = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--ws-url", draining.ws_url, "--metrics", f"127.0.0.1:{metrics_port}",
            "--notify-url", receiver.url(), "--alert", "available:USDT<700", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        try:
            async with httpx.AsyncClient() as http:

                async def scrape() -> str:
                    try:
                        return (await http.get(url, timeout=2)).text
                    except httpx.HTTPError:
                        return ""

                async def scraped(predicate: Any, limit: float = 30) -> str:
                    deadline = time.monotonic() + limit
                    while time.monotonic() < deadline:
                        if predicate(text := await scrape()):
                            return text
                        await asyncio.sleep(0.1)
                    raise AssertionError(f"metrics never said it: {text[-800:]}")

                await scraped(lambda t: 'link="user_data"} 1.0' in t)  # polled, and the stream open
                await until(lambda: bool(draining.user_data.connections()))
                last = ""
                for _ in range(4):  # 1000 → 600, 100 at a time
                    last = (await draining.push_balance_change("USDT", "-100"))["a"]["B"][0]["wb"]
                    await asyncio.sleep(0.2)
                text = await scraped(lambda t: f'asset="USDT"}} {float(last)}' in t)
                assert 'balance_tui_request_weight{account="' in text and 'scope="ip"' in text
                await until(lambda: any("available:USDT<700" in b.get("title", "") for b in receiver.bodies))
                firing = next(b for b in receiver.bodies if "available:USDT<700" in b["title"])
                assert "ALERT" in firing["title"] and "value: 600" in firing["message"]

                await draining.stop()  # the exchange goes away
                gone = time.monotonic()
                await scraped(lambda t: 'link="api"} 0.0' in t, limit=12)
                assert time.monotonic() - gone <= 12
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 5)
        finally:
            if process.returncode is None:
                process.kill()
            _, err = await process.communicate()
        assert code == 143, err
        assert b"Traceback" not in err and TEST_SECRET.encode() not in err
        assert receiver.url().encode() not in err  # the URL is a secret: never in the log


async def test_a_hanging_receiver_never_slows_the_dashboard(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    async with Receiver(hang=True) as receiver:
        settings = Settings(interval=2.0, alerts=["wallet:USDT>0"], notify_urls=[SecretStr(receiver.url())])
        app = BalanceApp(settings, clock=clock, exchange_factory=factory(sim, hmac_credentials))
        async with app.run_test(size=(120, 36)) as pilot:
            await started(pilot, app)
            screen = dashboard(app)
            await until(pilot=pilot, predicate=lambda: bool(screen.firing))
            await until(lambda: receiver.requests >= 1)  # the alert is posted to the receiver, which hangs
            await until(pilot=pilot, predicate=lambda: bool(sim.user_data.connections()))
            for _ in range(5):
                event = await sim.push_balance_change("ETH", "0.1")
                wallet = format_amount(Decimal(event["a"]["B"][0]["wb"]), 8)

                def shown(wallet: str = wallet) -> bool:
                    return table(app).get_cell("ETH", "wallet").plain == wallet

                await until(shown, pilot=pilot)
            assert receiver.bodies == []  # it never answered; the screen never waited for it


def test_the_grafana_dashboard_names_only_metrics_that_exist() -> None:
    import re

    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        SessionCollector("a", Session(Alerts([], builtins=set()), VirtualClock(start_ms=T0)), SYSTEM_CLOCK)
    )
    exported = set(re.findall(r"^# TYPE (\w+) gauge", generate_latest(registry).decode(), re.M))
    dashboard = (Path(__file__).parent.parent / "docs" / "serve" / "grafana-dashboard.json").read_text()
    used = set(re.findall(r"balance_tui_\w+", dashboard))
    assert used and used <= exported, used - exported


async def test_the_dashboard_serves_metrics_too(
    sim: ExchangeSimulator, clock: VirtualClock, hmac_credentials: Credentials
) -> None:
    port = free_port()
    app = BalanceApp(
        Settings(metrics=f"127.0.0.1:{port}"), clock=clock, exchange_factory=factory(sim, hmac_credentials)
    )
    async with app.run_test(size=(120, 36)) as pilot, httpx.AsyncClient() as http:
        await started(pilot, app)
        wallet = sim.account.assets["USDT"].wallet
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        # the account named as messages name it: where, and the key's first and last four characters
        key = hmac_credentials.api_key
        assert f'wallet_balance{{account="custom {key[:4]}…{key[-4:]}",asset="USDT"}} {float(wallet)}' in text
    with pytest.raises(httpx.ConnectError):  # closed with the dashboard
        httpx.get(f"http://127.0.0.1:{port}/metrics")
