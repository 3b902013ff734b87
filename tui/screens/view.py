"""What the dashboard shows, declared once: the one snapshot and status it holds, and each fact a widget draws,
which the screen derives from them and binds down (``data_bind``). A widget is told only of the facts it draws, and
only when one of them changed: a binding does not fire for a value set again unchanged."""

from __future__ import annotations

from collections.abc import Mapping

from textual.reactive import reactive
from textual.screen import Screen

from services import freshness
from services.alerts import AlertEvent
from services.keyaudit import KeyAudit
from services.models import (
    AccountSnapshot,
    AccountTotals,
    AssetBalance,
    Change,
    ConnectionStatus,
    MarginCall,
    WeightReading,
)
from services.positions import LivePosition
from services.today import TodayView
from widgets.balance_table import BalanceTable


class DashboardView(Screen[None]):
    """The dashboard's state as reactives (the behaviour is :class:`tui.screens.dashboard.DashboardScreen`'s)."""

    snapshot: reactive[AccountSnapshot | None] = reactive(None, repaint=False)
    status: reactive[ConnectionStatus | None] = reactive(None, repaint=False)
    now_ms: reactive[int] = reactive(0, repaint=False)  # bound down; the screen itself draws nothing from it
    margin_call: reactive[MarginCall | None] = reactive(None, bindings=True)
    firing: reactive[tuple[AlertEvent, ...]] = reactive(())  # the alerts that hold now, oldest first
    # Staleness is decided here once (_update_stale, by services.freshness) and bound down: the status line and the
    # table never disagree.
    stale: reactive[bool] = reactive(False, repaint=False)  # no new numbers for three refreshes
    behind: reactive[bool] = reactive(False, repaint=False)  # stale, or the link is down: numbers may have moved
    # What the widgets show, derived from the snapshot here and bound down (data_bind): each widget is told only of
    # the facts it draws, and only when one of them changed (an unchanged value does not fire a binding).
    totals: reactive[AccountTotals | None] = reactive(None, repaint=False)
    multi_assets: reactive[bool | None] = reactive(None, repaint=False)
    estimated: reactive[bool] = reactive(False, repaint=False)  # totals carried by marks since the last poll
    totals_alerted: reactive[bool] = reactive(False, repaint=False)  # an account-wide alert holds
    trouble: reactive[str] = reactive("", repaint=False)  # notifications failing (said once, until they work)
    risk_alerted: reactive[bool] = reactive(False, repaint=False)  # a rule on positions' risk or today holds
    weight: reactive[WeightReading | None] = reactive(None, repaint=False)
    weight_budget: reactive[int | None] = reactive(None, repaint=False)
    server_now_ms: reactive[int] = reactive(0, repaint=False)  # now on the exchange's clock
    balances: reactive[Mapping[str, AssetBalance]] = reactive(dict, repaint=False, always_update=True)  # (1)
    ages_at: reactive[int] = reactive(0, repaint=False)  # when the table's ages are to read: set when a step is due
    alerted_cells: reactive[frozenset[tuple[str, str]]] = reactive(frozenset, repaint=False)
    compact: reactive[bool] = reactive(False, repaint=False)  # a narrow terminal: the compact table
    # (1) Every snapshot, without comparing 2,000 rows first: the table's reconcile compares only what it draws.
    exchange_label: reactive[str] = reactive("", repaint=False)  # DEMO, TESTNET, LIVE, CUSTOM
    exchange_url: reactive[str] = reactive("", repaint=False)
    series: reactive[tuple[float, ...]] = reactive((), repaint=False)  # margin balance, while the panel is open
    tape: reactive[tuple[Change, ...]] = reactive((), repaint=False)
    tape_note: reactive[str] = reactive("", repaint=False)  # why the history is off, if it is
    selected_row: reactive[AssetBalance | None] = reactive(None, repaint=False)  # the highlighted asset's row
    selected_positions: reactive[tuple[LivePosition, ...]] = reactive((), repaint=False)  # margined in it
    positions: reactive[tuple[LivePosition, ...]] = reactive((), repaint=False)  # every position, for the risk
    today: reactive[TodayView | None] = reactive(None, repaint=False)  # the UTC day's change by reason
    key_audit: reactive[KeyAudit | None] = reactive(None, repaint=False)  # what the key may do, as last checked
    showing_positions: reactive[bool] = reactive(False, bindings=True)  # the positions view in the table's place
    #: Privacy mode (h, --private, private = true): bound to every widget that shows an amount, each of which draws
    #: services.formatting.MASK in its place; states, ages, ratios, distances and the weight stay.
    private: reactive[bool] = reactive(False, repaint=False)

    def derive(self, snapshot: AccountSnapshot | None) -> None:
        """Each widget's facts from the one snapshot, the table's rows first (they reconcile at once)."""
        self.balances = snapshot.balances if snapshot is not None else {}
        self.totals = snapshot.totals if snapshot else None
        self.multi_assets = snapshot.multi_assets_margin if snapshot else None
        self.estimated = snapshot is not None and snapshot.totals_source == "mark"
        self.weight = snapshot.weight if snapshot else None
        self.weight_budget = snapshot.weight_budget if snapshot else None
        self.positions = snapshot.positions if snapshot else ()
        self._update_selected()
        self._update_stale()
        self._update_meter_clock()

    def _update_meter_clock(self) -> None:
        offset = self.snapshot.clock_offset_ms if self.snapshot else 0
        self.server_now_ms = self.now_ms + offset

    def _update_stale(self) -> None:
        self.stale = freshness.is_stale(self.status, self.snapshot, self.now_ms)
        self.behind = freshness.is_behind(self.status, self.snapshot, self.now_ms)

    def _update_selected(self) -> None:
        """The highlighted asset's row and positions, for the margin pane."""
        snapshot = self.snapshot
        asset = self.query_one(BalanceTable).selected_asset
        self.selected_row = snapshot.balances.get(asset) if snapshot is not None and asset else None
        positions = tuple(p for p in snapshot.positions if p.margin_asset == asset) if snapshot else ()
        self.selected_positions = positions
