"""The alerts screen: what holds now, and what fired and resolved this session."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from services.alerts import POSITION_METRICS, TODAY_METRICS, AlertEvent, Rule
from services.formatting import format_exact
from widgets.margin_pane import clock_time

#: The table column that shows each per-asset metric, for highlighting the figure an alert fired on.
ALERT_COLUMNS = {
    "available": "available",
    "wallet": "wallet",
    "upnl": "upnl",
    "max_withdraw": "max_withdraw",
    "margin_balance": "asset",
}


def alerted(firing: Iterable[AlertEvent], rules: Iterable[Rule]) -> tuple[set[tuple[str, str]], bool, bool]:
    """The table's cells (asset, column) that firing rules are about, whether an account-wide rule fires (the totals
    line), and whether a rule on positions' risk or today's figures fires (the risk line)."""
    by_text = {rule.text: rule for rule in rules}
    held = [by_text[e.rule] for e in firing if e.rule in by_text]
    risk = [rule for rule in held if rule.metric in POSITION_METRICS or rule.metric in TODAY_METRICS]
    others = [rule for rule in held if rule not in risk]
    cells = {(rule.asset, ALERT_COLUMNS.get(rule.metric, "asset")) for rule in others if rule.asset}
    return cells, any(rule.asset is None for rule in others), bool(risk)


class AlertsScreen(ModalScreen[None]):
    """Every alert of the session: what holds now, and what fired and resolved before."""

    BINDINGS = [Binding("escape,q,exclamation_mark", "dismiss", "Close", id="alerts.close")]

    def __init__(self, log: Iterable[AlertEvent], firing: tuple[AlertEvent, ...], *, private: bool = False) -> None:
        super().__init__()
        self.events = list(log)
        self.holding = firing
        self.private = private  # privacy mode: each figure an alert fired at is masked

    def compose(self) -> ComposeResult:
        lines = ["Alerts holding now:"]
        private = self.private
        lines += [f"  {clock_time(e.at_ms)}  {e.rule}  {alert_value(e, private=private)}" for e in self.holding] or [
            "  none"
        ]
        lines += ["", "This session:"]
        lines += [
            f"  {clock_time(e.at_ms)}  {e.state:<8}  {e.rule}  {alert_value(e, private=private)}"
            for e in reversed(self.events[-200:])
        ] or ["  nothing yet"]
        lines += ["", "Rules: --alert RULE or alerts = [...] in the config file (README). escape closes."]
        with VerticalScroll(id="alerts"):
            yield Static("\n".join(lines))


def alert_value(event: AlertEvent, *, private: bool = False) -> str:
    value = f"value {format_exact(event.value, private=private)}" if event.value is not None else event.detail
    return value + (" (on stale data)" if event.stale else "")
