"""Prometheus metrics of a session, with prometheus-client: read at each scrape from what the session holds now, so
that a figure is never older than the session's own and a link that went down reads down at the next scrape.

Names follow Prometheus' conventions: the ``balance_tui_`` prefix, base units (amounts in their asset, ratios as
fractions, times in ``_seconds``), labels of bounded cardinality (account, asset, symbol and side of positions held,
rule). Values are floats, as Prometheus has no other kind: the screen and the JSON stay exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from services import freshness
from services.clock import Clock
from services.models import LinkState
from services.session import Session

log = logging.getLogger("balance_tui.metrics")

PREFIX = "balance_tui_"

#: (metric, help, how an asset row gives it)
ASSET_GAUGES = (
    ("wallet_balance", "Wallet balance of the asset, in the asset.", "wallet_balance"),
    ("cross_wallet_balance", "Cross wallet balance of the asset, in the asset.", "cross_wallet_balance"),
    ("available_balance", "Available balance as the exchange reports it for the asset, in the asset.",
     "available_balance"),
    ("max_withdraw_amount", "Maximum withdrawable amount of the asset, in the asset.", "max_withdraw_amount"),
)  # fmt: skip


class SessionCollector:
    """One account's figures, read from its session at each scrape (prometheus-client's custom collector)."""

    def __init__(self, account: str, session: Session, clock: Clock) -> None:
        self.account = account
        self.session = session
        self.clock = clock

    def describe(self) -> list[Any]:
        return []  # described by collect(): the families depend on what the account holds

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=["account", *labels])

        account = self.account
        snapshot, status, now = self.session.snapshot, self.session.status, self.clock.time_ms()
        families = {name: gauge(name, doc, ["asset"]) for name, doc, _ in ASSET_GAUGES}
        upnl = gauge("unrealized_pnl", "Cross unrealized PnL of the asset, in the asset.", ["asset", "source"])
        if snapshot is not None:
            for asset, row in sorted(snapshot.balances.items()):
                for name, _, field in ASSET_GAUGES:
                    families[name].add_metric([account, asset], float(getattr(row, field)))
                upnl.add_metric([account, asset, row.upnl_source], float(row.cross_un_pnl))
        yield from families.values()
        yield upnl

        margin = gauge("margin_balance", "The account's total margin balance (USDT, or USD in Multi-Assets mode).", [])
        ratio = gauge("margin_ratio", "Maintenance margin over margin balance (1 is liquidation).", [])
        totals = snapshot.totals if snapshot is not None else None
        if totals is not None:
            margin.add_metric([account], float(totals.total_margin_balance))
            if totals.margin_ratio is not None:
                ratio.add_metric([account], float(totals.margin_ratio))
        yield margin
        yield ratio

        weight = gauge("request_weight", "Request weight used this minute: by the IP (every program) or this app.",
                       ["scope"])  # fmt: skip
        limit = gauge("request_weight_limit", "The IP's request weight limit a minute.", [])
        reading = snapshot.weight if snapshot is not None else None
        if reading is not None:
            weight.add_metric([account, "ip"], reading.count)
            weight.add_metric([account, "app"], reading.own)
            limit.add_metric([account], reading.limit)
        yield weight
        yield limit

        up = gauge("link_up", "1 while the link delivers current figures, else 0.", ["link"])
        current = status is not None and status.state is LinkState.LIVE and freshness.is_current(
            status, snapshot, now)  # fmt: skip
        up.add_metric([account, "api"], 1.0 if current else 0.0)
        streaming = current and status is not None and status.stream in ("live", "unproven")
        up.add_metric([account, "user_data"], 1.0 if streaming else 0.0)
        if snapshot is not None and snapshot.positions:
            up.add_metric([account, "market"], 1.0 if current and not snapshot.marks_stale else 0.0)
        yield up
        since = gauge("seconds_since_last_reply", "Seconds since the exchange last answered a poll.", [])
        if status is not None and status.last_success_ms is not None:
            since.add_metric([account], max(0, now - status.last_success_ms) / 1000)
        yield since

        firing = gauge("alert_firing", "1 while the rule (or built-in alert) holds.", ["rule"])
        holding = {event.rule for event in self.session.firing}
        names = [rule.text for rule in self.session.alerts.rules] + sorted(self.session.alerts.builtins)
        for name in names:
            firing.add_metric([account, name], 1.0 if name in holding else 0.0)
        yield firing

        labels = ["symbol", "side"]
        amount = gauge("position_amount", "Signed position amount (short below 0).", labels)
        pnl = gauge("position_unrealized_pnl", "Unrealized PnL of the position, in its margin asset.", labels)
        distance = gauge("position_liquidation_distance",
                         "How far the mark may move against the position before liquidation, as a fraction of the "
                         "mark (0 or less: at or past it).", labels)  # fmt: skip
        for p in snapshot.positions if snapshot is not None else ():
            key = [account, p.symbol, p.side]
            amount.add_metric(key, float(p.amount))
            pnl.add_metric(key, float(p.unrealized))
            if (d := p.liq_distance) is not None:
                distance.add_metric(key, float(d))
        yield amount
        yield pnl
        yield distance


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1: another only when given); raises ValueError."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics {text!r}: give HOST:PORT or PORT, e.g. 127.0.0.1:9108")
    return host, int(port)


class MetricsServer:
    """The ``/metrics`` endpoint on a thread of its own (prometheus-client's), serving one registry."""

    def __init__(self, address: str) -> None:
        from prometheus_client import CollectorRegistry

        self.host, self.port = parse_address(address)
        self.registry = CollectorRegistry(auto_describe=False)
        self._server: Any = None

    def add(self, collector: SessionCollector) -> None:
        self.registry.register(collector)

    def start(self) -> None:
        from prometheus_client import start_http_server

        try:
            self._server, _ = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise OSError(f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}") from None
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
