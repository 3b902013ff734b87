"""The margin detail pane for the highlighted asset: what backs positions, and how close the account is to trouble."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from services.formatting import format_amount, format_ratio
from services.models import AccountTotals, AssetBalance
from widgets.styles import tone as theme_tone

PLACES = 8
RATIO_WARN = 0.5
RATIO_DANGER = 0.8


def explain(row: AssetBalance, multi_assets: bool | None) -> str:
    """One plain sentence on what this asset does for the account's margin."""
    asset = row.asset
    if multi_assets is None:
        return "Waiting for the account's margin mode."
    if multi_assets:
        if row.margin_available:
            return (
                f"Multi-Assets mode is on: {asset} counts toward the shared margin, valued in USD, so "
                "Available and Max withdraw are account-wide figures, not this asset alone."
            )
        return f"Multi-Assets mode is on, but {asset} does not count as margin: it backs no position as it is."
    if asset == "USDT":
        return "Single-asset mode: only USDT backs USDT-margined positions, and the account totals count USDT only."
    if asset == "USDC":
        return "Single-asset mode: USDC backs only USDC-margined contracts; it is not in the USDT totals."
    return f"Single-asset mode: {asset} backs no USDT position. Switch Multi-Assets mode on to use it as margin."


def clock_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S") if ms else "—"


class MarginPane(Widget):
    """Margin facts for one asset and the account it belongs to."""

    COMPONENT_CLASSES = {"margin-pane--warn", "margin-pane--danger", "margin-pane--label"}

    DEFAULT_CSS = """
    MarginPane { height: auto; }
    MarginPane > .margin-pane--warn { color: $text-warning; }
    MarginPane > .margin-pane--danger { color: $text-error; text-style: bold; }
    MarginPane > .margin-pane--label { color: $text-muted; }
    """

    # Repaint, never relayout: the pane has a fixed height (in the stylesheet), so a push that changes a figure
    # costs a repaint of the pane alone, not a layout of the whole screen.
    row: reactive[AssetBalance | None] = reactive(None)
    multi_assets: reactive[bool | None] = reactive(None)
    totals: reactive[AccountTotals | None] = reactive(None)

    def render(self) -> RenderableType:
        row = self.row
        label = theme_tone(self, "margin-pane--label")
        if row is None:
            return Text("Highlight an asset to see its margin.", style=label)
        mode = {True: "on", False: "off", None: "unknown"}[self.multi_assets]
        counts = {True: "yes", False: "no", None: "not reported"}[row.margin_available]
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style=label)
        facts.add_column(justify="right")
        facts.add_column(style=label)
        facts.add_column(justify="right")
        pairs: list[tuple[str, Text | str]] = [
            ("Counts as margin", counts),
            ("Multi-Assets mode", mode),
            ("Wallet", format_amount(row.wallet_balance, PLACES)),
            ("Available", format_amount(row.available_balance, PLACES)),
            ("Max withdraw", format_amount(row.max_withdraw_amount, PLACES)),
        ]
        totals = self.totals
        if totals is not None:
            unit = "USD" if self.multi_assets else "USDT"
            ratio = totals.margin_ratio
            tone = ""
            if ratio is not None and ratio >= RATIO_DANGER:
                tone = "danger"
            elif ratio is not None and ratio >= RATIO_WARN:
                tone = "warn"
            style = theme_tone(self, f"margin-pane--{tone}") if tone else ""
            pairs += [
                (f"Margin balance {unit}", format_amount(totals.total_margin_balance, PLACES)),
                (f"Maint. margin {unit}", format_amount(totals.total_maint_margin, PLACES)),
                ("Margin ratio", Text(format_ratio(ratio), style=style)),
            ]
        if len(pairs) % 2:
            pairs.append(("", ""))
        for (a, va), (b, vb) in zip(pairs[::2], pairs[1::2], strict=True):
            facts.add_row(a, va, b, vb)
        source = f"{row.source} · {row.source_method} · received {clock_time(row.received_at_ms)}"
        return Group(
            Text.assemble((row.asset, "bold"), ("   " + source, label)),
            facts,
            Text(explain(row, self.multi_assets)),
        )
