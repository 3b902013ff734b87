"""Alerts: rules on the account's figures and built-in alerts on the feed's health, fired once and resolved once.

Rules have one grammar everywhere (``--alert``, the config file): ``<metric>[:<ASSET>] <op> <value>``, e.g.
``available:USDT<500``, ``margin_ratio>0.8``, ``upnl:USDT<-1000``; values are exact decimals, compared as Decimals.
Positions' risk takes a symbol, optional: ``liq_distance:BTCUSDT<0.05`` (a fraction of the mark; without a symbol,
the nearest position), ``adl>=4`` (without a symbol, the highest quantile held); today's figures an asset, optional
(USDT without one): ``today_pnl:USDT<-500``, ``today_funding<-20``. A rule whose figure goes away (the position
closed) resolves.
A rule fires when it starts to hold and resolves when it stops; it fires again only after it has stayed resolved for
``rearm_after`` seconds (hysteresis: a value wobbling on the line does not flap). Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from services import freshness
from services.models import AccountSnapshot, AssetBalance, ConnectionStatus, LinkState
from services.today import TodayView

log = logging.getLogger("balance_tui.alerts")

REARM_AFTER = 60.0  # seconds a rule must stay resolved before it may fire again
SILENT_AFTER = 120.0  # seconds the push stream may be silent or lost before the built-in alert
# The built-in "stale" alert and a rule's "on stale data" read services.freshness, as the screen's STALE does.

ASSET_METRICS: dict[str, Callable[[AssetBalance], Decimal]] = {
    "available": lambda r: r.available_balance,
    "wallet": lambda r: r.wallet_balance,
    "upnl": lambda r: r.cross_un_pnl,
    "margin_balance": lambda r: r.wallet_balance + r.cross_un_pnl,
    "max_withdraw": lambda r: r.max_withdraw_amount,
}
ACCOUNT_METRICS = ("margin_ratio", "total_upnl", "total_margin_balance", "total_wallet")
#: Per position, by symbol (without one: the nearest liquidation, the highest ADL quantile).
POSITION_METRICS = ("liq_distance", "adl")
#: Today's figures (services/today.py), by asset (without one: USDT).
TODAY_METRICS = ("today_pnl", "today_funding")
TODAY_DEFAULT_ASSET = "USDT"
#: Metrics computed from mark prices between polls: stale when marks stop.
MARK_METRICS = frozenset(
    {"upnl", "margin_balance", "margin_ratio", "total_upnl", "total_margin_balance", "liq_distance"}
)
BUILTINS = ("margin_call", "stream_silent", "stale", "credentials", "rate_limited")
OPS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
_RULE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_]+)\s*(?::\s*(?P<asset>[^\s<>=]+))?\s*(?P<op><=|>=|<|>)\s*(?P<value>\S+)\s*$"
)


class AlertRuleError(ValueError):
    """A rule that cannot be read: the message names the rule and what is wrong with it."""


@dataclass(frozen=True)
class Rule:
    """One alert rule, as written and as understood."""

    text: str
    metric: str
    op: str
    value: Decimal
    asset: str | None = None

    def measure(self, snapshot: AccountSnapshot, today: TodayView | None = None) -> Decimal | None:
        """The figure the rule watches, or None if the snapshot does not have it (an asset not held)."""
        if self.metric in POSITION_METRICS:
            return _position_figure(snapshot, self.metric, self.asset)
        if self.metric in TODAY_METRICS:
            if today is None or today.since_ms is None:
                return None
            figures = today.figures(self.asset or TODAY_DEFAULT_ASSET)
            return figures.pnl if self.metric == "today_pnl" else figures.funding
        if self.asset is not None:
            row = snapshot.balances.get(self.asset)
            return ASSET_METRICS[self.metric](row) if row is not None else None
        totals = snapshot.totals
        if totals is None:
            return None
        if self.metric == "margin_ratio":
            return totals.margin_ratio
        if self.metric == "total_upnl":
            return totals.total_unrealized_profit
        if self.metric == "total_margin_balance":
            return totals.total_margin_balance
        return totals.total_wallet_balance

    def holds(self, value: Decimal) -> bool:
        return OPS[self.op](value, self.value)


def _position_figure(snapshot: AccountSnapshot, metric: str, symbol: str | None) -> Decimal | None:
    """The nearest liquidation (smallest distance) or the highest ADL quantile, of one symbol's positions (both
    sides in hedge mode) or of all; None when no position has one."""
    held = [p for p in snapshot.positions if symbol is None or p.symbol == symbol]
    if metric == "liq_distance":
        distances = [d for p in held if (d := p.liq_distance) is not None]
        return min(distances) if distances else None
    quantiles = [p.adl for p in held if p.adl is not None]
    return Decimal(max(quantiles)) if quantiles else None


def parse_rule(text: str) -> Rule:
    """A rule from its text; raises :class:`AlertRuleError` naming the rule and the problem."""
    match = _RULE.match(text)
    if match is None:
        raise AlertRuleError(f"alert {text!r}: not <metric>[:<ASSET>] <op> <value>, e.g. available:USDT<500")
    metric, asset, op, raw = match["metric"].lower(), match["asset"], match["op"], match["value"]
    known = [*ASSET_METRICS, *ACCOUNT_METRICS, *POSITION_METRICS, *TODAY_METRICS]
    if metric not in known:
        close = difflib.get_close_matches(metric, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (metrics: {', '.join(known)})"
        raise AlertRuleError(f"alert {text!r}: unknown metric {metric!r}{hint}")
    if metric in ASSET_METRICS and not asset:
        raise AlertRuleError(f"alert {text!r}: {metric} is per asset: write {metric}:<ASSET>, e.g. {metric}:USDT")
    if metric in ACCOUNT_METRICS and asset:
        raise AlertRuleError(f"alert {text!r}: {metric} is for the whole account: drop ':{asset}'")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise AlertRuleError(f"alert {text!r}: {raw!r} is not a number") from None
    if not value.is_finite():
        raise AlertRuleError(f"alert {text!r}: {raw!r} is not a finite number")
    return Rule(text.strip(), metric, op, value, asset.upper() if asset else None)


def parse_rules(texts: Iterable[str]) -> list[Rule]:
    return [parse_rule(text) for text in texts]


@dataclass(frozen=True)
class AlertEvent:
    """A rule or built-in alert started to hold (``firing``) or stopped (``resolved``)."""

    rule: str
    state: Literal["firing", "resolved"]
    at_ms: int
    value: Decimal | None = None
    asset: str | None = None
    stale: bool = False  # the figure it fired on was not current: said, not hidden
    detail: str = ""

    def json_line(self) -> dict[str, object]:
        return {
            "type": "alert",
            "rule": self.rule,
            "state": self.state,
            "value": None if self.value is None else format(self.value, "f"),
            "asset": self.asset,
            "at_ms": self.at_ms,
            "stale": self.stale,
            "detail": self.detail,
        }


@dataclass
class _Track:
    firing: bool = False
    resolved_at_ms: int | None = None
    value: Decimal | None = None
    since_ms: int = 0


@dataclass
class Alerts:
    """Watches the rules and the built-in alerts; :meth:`check` returns what started or stopped since last time."""

    rules: list[Rule]
    builtins: set[str] = field(default_factory=lambda: set(BUILTINS))
    rearm_after: float = REARM_AFTER
    silent_after: float = SILENT_AFTER
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)
    _silent_since: int | None = None

    def firing(self) -> dict[str, _Track]:
        return {name: t for name, t in self._tracks.items() if t.firing}

    def check(
        self,
        snapshot: AccountSnapshot | None,
        status: ConnectionStatus | None,
        now_ms: int,
        *,
        margin_call: bool = False,
        today: TodayView | None = None,
    ) -> list[AlertEvent]:
        stale = not freshness.is_current(status, snapshot, now_ms, from_marks=True)
        stale_link = not freshness.is_current(status, snapshot, now_ms)
        events: list[AlertEvent] = []
        if snapshot is not None:
            for rule in self.rules:
                value = rule.measure(snapshot, today)
                if value is None:
                    if rule.asset and rule.asset not in self._warned:
                        self._warned.add(rule.asset)
                        what = (
                            "no position in {} with one"
                            if rule.metric in POSITION_METRICS
                            else "the account holds no {}"
                        )
                        log.warning("alert %s: %s (yet)", rule.text, what.format(rule.asset))
                    track = self._tracks.get(rule.text)
                    if track is not None and track.firing:  # the figure went away (the position closed)
                        events += self._step(rule.text, False, now_ms, asset=rule.asset, detail="no longer held")
                    continue
                # Marks stopping makes only the figures computed from marks stale; available and wallet are the exchange's.
                rule_stale = stale if rule.metric in MARK_METRICS else stale_link
                events += self._step(
                    rule.text, rule.holds(value), now_ms, value=value, asset=rule.asset, stale=rule_stale
                )
        for name, holds, detail in self._builtins(snapshot, status, now_ms, margin_call=margin_call, stale=stale):
            if name in self.builtins:
                events += self._step(name, holds, now_ms, detail=detail)
        return events

    def _step(
        self,
        name: str,
        holds: bool,
        now_ms: int,
        *,
        value: Decimal | None = None,
        asset: str | None = None,
        stale: bool = False,
        detail: str = "",
    ) -> list[AlertEvent]:
        track = self._tracks.setdefault(name, _Track())
        track.value = value
        if holds and not track.firing:
            rested = track.resolved_at_ms is None or now_ms - track.resolved_at_ms >= self.rearm_after * 1000
            if rested:
                track.firing, track.since_ms = True, now_ms
                return [AlertEvent(name, "firing", now_ms, value, asset, stale, detail)]
        elif not holds and track.firing:
            track.firing, track.resolved_at_ms = False, now_ms
            return [AlertEvent(name, "resolved", now_ms, value, asset, stale, detail)]
        return []

    def _builtins(
        self,
        snapshot: AccountSnapshot | None,
        status: ConnectionStatus | None,
        now_ms: int,
        *,
        margin_call: bool,
        stale: bool,
    ) -> list[tuple[str, bool, str]]:
        state = status.state if status is not None else None
        quiet = status is not None and status.stream in ("silent", "reconnecting", "connecting")
        if quiet and self._silent_since is None:
            self._silent_since = now_ms
        elif not quiet:
            self._silent_since = None
        silent_for = (now_ms - self._silent_since) / 1000 if self._silent_since is not None else 0.0
        # The screen's STALE, for STALE_ALERT_AFTER_MS: not the time since the last poll, which with the stream
        # live is a minute by plan (the alert fired 30 s after every reconcile on a quiet account).
        old = (
            snapshot is not None
            and status is not None
            and freshness.is_stale(status, snapshot, now_ms)
            and now_ms >= freshness.stale_alert_at_ms(status, snapshot)
        )
        return [
            ("margin_call", margin_call, "the exchange sent a MARGIN_CALL"),
            ("stream_silent", silent_for >= self.silent_after, f"push stream {status.stream if status else ''}"),
            ("stale", old, "no new numbers"),
            ("credentials", state in (LinkState.CREDENTIALS_REJECTED, LinkState.UNSUPPORTED), "credentials rejected"),
            ("rate_limited", state in (LinkState.RATE_LIMITED, LinkState.BANNED), "rate-limited or banned"),
        ]
