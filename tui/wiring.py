"""Wiring: which exchange the settings point at, and the client and feed built for it.

The one place that turns settings into running parts, shared by the CLI's headless commands and the dashboard, so
that neither imports the other. In demo mode the embedded simulator is imported, and started, here and only here.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from services.alerts import BUILTINS, AlertRuleError, Alerts, parse_rules
from services.client import WsApiClient
from services.clock import SYSTEM_CLOCK, Clock
from services.delivery import DeliveryError, apprise_sender
from services.endpoints import Credentials
from services.feed import AccountFeed
from services.history import HistoryRecorder, HistoryStore, account_id
from services.keycheck import KeyChecker
from services.marks import MarkPriceStream
from services.reach import Reach
from services.session import Session
from services.settings import ConfigError, Settings
from services.signing import HmacSigner
from services.stream import UserDataStream
from services.weight import WeightBudget

if TYPE_CHECKING:
    from services.simulator import ExchangeSimulator


#: A closed terminal (SIGHUP) or a ``kill`` (SIGTERM) ends any command cleanly: listen key stopped, terminal
#: restored, exit code 128 + the signal's number (143, 129).
TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Exchange:
    """Where to connect and as whom; ``simulator`` is set when it is the embedded one (``demo``: its data)."""

    ws_url: str
    stream_url: str
    credentials: Credentials | None
    simulator: ExchangeSimulator | None = None
    demo: bool = False
    rest_url: str | None = None  # where the key's permissions are asked (None: nowhere, the testnet)

    @property
    def label(self) -> str:
        """DEMO (embedded simulator), TESTNET, LIVE (Binance production: real money), or CUSTOM (any other URL)."""
        if self.demo or self.simulator is not None:
            return "DEMO"
        host = urlsplit(self.ws_url).hostname or ""
        if host.endswith("binancefuture.com"):
            return "TESTNET"
        if host.endswith("binance.com"):
            return "LIVE"
        return "CUSTOM"


#: How the dashboard finds its exchange: ``open_exchange`` in a run, the simulator under test.
ExchangeFactory = Callable[[Settings], AbstractAsyncContextManager[Exchange]]


@contextlib.asynccontextmanager
async def open_exchange(settings: Settings, *, announce: TextIO | None = sys.stderr) -> AsyncIterator[Exchange]:
    """The exchange the settings point at; in demo mode, the embedded simulator started on a free loopback port."""
    if not settings.use_simulator:
        credentials = settings.credentials()
        yield Exchange(settings.endpoint(), settings.stream_endpoint(), credentials, rest_url=settings.rest_endpoint())
        return
    from services.simulator import ExchangeSimulator, SimulatedAccount  # demo only: not paid for by a live start

    simulator = ExchangeSimulator(account=SimulatedAccount())
    api_key, secret = simulator.add_hmac_key()
    await simulator.start()
    if settings.demo_motion:
        simulator.start_ticker(1.0, push_every=5)
    if announce is not None:
        print("demo: no credentials given, using the embedded exchange simulator (not real money)", file=announce)
    try:
        yield Exchange(
            simulator.ws_url,
            simulator.stream_url,
            Credentials(api_key, HmacSigner(secret)),
            simulator=simulator,
            rest_url=simulator.rest_url,
        )
    finally:
        await simulator.stop()


def make_client(settings: Settings, exchange: Exchange, clock: Clock = SYSTEM_CLOCK) -> WsApiClient:
    return WsApiClient(
        exchange.ws_url,
        exchange.credentials,
        clock=clock,
        recv_window=settings.recv_window,
        request_timeout=settings.request_timeout,
    )


def make_key_checker(settings: Settings, exchange: Exchange, client: WsApiClient) -> KeyChecker:
    """The check of the key's permissions, timed by the exchange's clock as the client knows it."""
    return KeyChecker(
        exchange.rest_url,
        exchange.credentials,
        clock=client.clock,
        server_time_ms=client.server_time_ms,
        timeout=settings.request_timeout,
    )


def make_feed(settings: Settings, exchange: Exchange, client: WsApiClient) -> AccountFeed:
    """The feed the settings ask for: polling, and pushes from the user-data stream unless switched off."""
    stream = UserDataStream(client, exchange.stream_url) if settings.stream else None
    # Mark prices live on the same host as the user-data stream, under /market (PROTOCOL.md §1, §6b).
    marks = MarkPriceStream(exchange.stream_url, clock=client.clock) if settings.marks else None
    return AccountFeed(
        client,
        interval=settings.interval,
        stream=stream,
        reconcile_every=settings.reconcile_interval,
        marks=marks,
        keys=make_key_checker(settings, exchange, client),
        budget=WeightBudget(
            share_streaming=settings.weight_share,
            share_polling=settings.weight_share_polling,
            slow_above=settings.slow_above,
        ),
    )


def alerts_from(settings: Settings) -> Alerts:
    """The alert rules and built-ins the settings ask for; a rule that cannot be read is a ConfigError."""
    unknown = sorted(set(settings.alert_builtins) - set(BUILTINS))
    if unknown:
        raise ConfigError(f"alert_builtins: unknown built-in alert {unknown[0]!r} (built-ins: {', '.join(BUILTINS)})")
    try:
        rules = parse_rules(settings.alerts)
    except AlertRuleError as exc:
        raise ConfigError(str(exc)) from None
    builtins = {name for name in BUILTINS if settings.alert_builtins.get(name, True)}
    return Alerts(rules, builtins=builtins)


def open_history(settings: Settings, exchange: Exchange, clock: Clock = SYSTEM_CLOCK) -> HistoryRecorder | None:
    """The history recorder the settings ask for (None with ``--no-history``); raises HistoryError, one line."""
    if not settings.history:
        return None
    store = HistoryStore(settings.history_dir())
    store.prune(clock.time_ms() - settings.history_days * 86_400_000)
    return HistoryRecorder(store, history_account(settings, exchange.ws_url, demo=exchange.label == "DEMO"))


def history_account(settings: Settings, endpoint: str, *, demo: bool) -> str:
    api_key = settings.api_key.get_secret_value().strip() if settings.api_key is not None else None
    return account_id(endpoint, profile=settings.profile, api_key=api_key, demo=demo)


def account_label(settings: Settings, exchange: Exchange) -> str:
    """How messages name the account: the profile, else where and whose key (its first and last four characters)."""
    if settings.profile:
        return settings.profile
    key = exchange.credentials.api_key if exchange.credentials is not None else ""
    who = f" {key[:4]}…{key[-4:]}" if len(key) > 8 and exchange.label != "DEMO" else ""
    return f"{exchange.label.lower()}{who}"


def make_reach(
    settings: Settings,
    exchange: Exchange,
    session: Session,
    clock: Clock,
    *,
    on_trouble: Callable[[str | None], None] | None = None,
) -> Reach:
    """Notifications, the daily summary and metrics, as the settings ask (a bad URL is a ConfigError, unnamed)."""
    try:
        return Reach(
            session,
            account=account_label(settings, exchange),
            clock=clock,
            urls=[url.get_secret_value() for url in settings.notify_urls],
            metrics=settings.metrics,
            daily_at=settings.daily_summary,
            on_trouble=on_trouble,
        )
    except DeliveryError as exc:
        raise ConfigError(str(exc)) from None


def check_reach(settings: Settings) -> None:
    """Every notification URL one apprise can send to, before anything connects (ConfigError, the URL unnamed)."""
    if settings.notify_urls:
        try:
            apprise_sender([url.get_secret_value() for url in settings.notify_urls])
        except DeliveryError as exc:
            raise ConfigError(str(exc)) from None
