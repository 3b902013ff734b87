"""The margin detail pane for the highlighted asset: what backs positions, and how close the account is to trouble."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from services.formatting import format_amount, format_exact, format_ratio
from services.models import AccountTotals, AssetBalance
from services.positions import LivePosition
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
                f"Multi-Assets mode is on: {asset} counts toward the shared margin, valued in USD. Available is the "
                f"account's, in USD (the table shows it once, in the totals); Max withdraw is in {asset}."
            )
        return f"Multi-Assets mode is on, but {asset} does not count as margin: it backs no position as it is."
    if asset == "USDT":
        return "Single-asset mode: only USDT backs USDT-margined positions, and the account totals count USDT only."
    if asset == "USDC":
        return "Single-asset mode: USDC backs only USDC-margined contracts; it is not in the USDT totals."
    return f"Single-asset mode: {asset} backs no USDT position. Switch Multi-Assets mode on to use it as margin."


def clock_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S") if ms else "—"


BASE_HEIGHT = 8
MAX_POSITION_LINES = 6
TALL = 30  # terminal rows from which the pane lists positions


def _positions_table(positions: tuple[LivePosition, ...], label: str | Style) -> Table:
    """Why available is what it is: the positions margined in this asset, their uPnL live from the marks."""
    table = Table.grid(padding=(0, 2))
    for justify in ("left", "left", "right", "right", "right", "right", "right"):
        table.add_column(justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_row(*(Text(h, style=label) for h in ("Symbol", "Side", "Size", "Entry", "Mark", "uPnL", "Notional")))
    for p in positions[:MAX_POSITION_LINES]:
        approx = "≈" if p.source == "mark" else ""
        table.add_row(
            p.symbol + (" (iso)" if p.isolated else ""),
            p.side,
            format_exact(p.amount),
            format_exact(p.entry_price),
            format_exact(p.mark_price) if p.mark_price is not None else "—",
            approx + format_amount(p.unrealized, 2, signed=True),
            approx + format_amount(p.notional, 2),
        )
    return table


def _grid(pairs: list[tuple[str, Text | str]], width: int, label: str | Style) -> Table:
    """Two pairs a line when they fit; one a line when they do not (a whale's balance), so every digit shows."""
    widest_label = max(len(a) for a, _ in pairs)
    widest_value = max(len(str(v)) for _, v in pairs)
    per_line = 2 if not width or 2 * (widest_label + widest_value) + 6 <= width else 1
    grid = Table.grid(padding=(0, 2))
    for _ in range(per_line):
        grid.add_column(style=label)
        grid.add_column(justify="right", no_wrap=True)
    if per_line == 1:
        # One a line leaves room for fewer: the margin ratio before the flags, the maintenance margin last.
        order = ["Wallet", "Available", "Max withdraw", "Margin balance", "Margin ratio", "Counts as margin"]
        rank = {name: i for i, name in enumerate(order)}
        for a, va in sorted(pairs, key=lambda p: next((rank[n] for n in order if p[0].startswith(n)), len(order))):
            grid.add_row(a, va)
        return grid
    if len(pairs) % 2:
        pairs = [*pairs, ("", "")]
    for (a, va), (b, vb) in zip(pairs[::2], pairs[1::2], strict=True):
        grid.add_row(a, va, b, vb)
    return grid


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
    estimated: reactive[bool] = reactive(False)  # the totals carried by marks since the last poll
    positions: reactive[tuple[LivePosition, ...]] = reactive(())  # margined in the highlighted asset

    def _position_lines(self, count: int) -> int:
        """Lines for the positions table: none on a short terminal (the table of balances needs the rows)."""
        if not count or not self.is_mounted or self.screen.size.height < TALL:
            return 0
        return min(count, MAX_POSITION_LINES) + 1

    def watch_positions(self, old: tuple[LivePosition, ...], new: tuple[LivePosition, ...]) -> None:
        if len(old) != len(new):  # one line a position: the pane grows (a layout) only when the count changes
            self.styles.height = BASE_HEIGHT + self._position_lines(len(new))

    def render(self) -> RenderableType:
        row = self.row
        label = theme_tone(self, "margin-pane--label")
        if row is None:
            return Text("Highlight an asset to see its margin.", style=label)
        mode = {True: "on", False: "off", None: "unknown"}[self.multi_assets]
        counts = {True: "yes", False: "no", None: "not reported"}[row.margin_available]
        facts = Table.grid(padding=(0, 2))
        # Values fold rather than end in "…": the pane shows every digit, a whale's on a second line if need be.
        facts.add_column(style=label)
        facts.add_column(justify="right", overflow="fold")
        facts.add_column(style=label)
        facts.add_column(justify="right", overflow="fold")
        pairs: list[tuple[str, Text | str]] = [
            ("Counts as margin", counts),
            ("Multi-Assets mode", mode),
            ("Wallet", format_amount(row.wallet_balance, PLACES)),
            (
                "Available (USD, all)" if row.available_is_shared else "Available",
                format_amount(row.available_balance, PLACES),
            ),
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
            approx = "≈" if self.estimated else ""
            pairs += [
                (f"Margin balance {unit}", approx + format_amount(totals.total_margin_balance, PLACES)),
                (f"Maint. margin {unit}", approx + format_amount(totals.total_maint_margin, PLACES)),
                ("Margin ratio" + (" (est.)" if approx else ""), Text(approx + format_ratio(ratio), style=style)),
            ]
        facts = _grid(pairs, self.content_size.width, label)
        source = f"{row.source} · {row.source_method} · received {clock_time(row.received_at_ms)}"
        parts: list[RenderableType] = [Text.assemble((row.asset, "bold"), ("   " + source, label)), facts]
        if self._position_lines(len(self.positions)):
            parts.append(_positions_table(self.positions, label))
        elif self.positions:
            held = len(self.positions)
            parts.append(
                Text(
                    f"{held} position{'s' if held > 1 else ''} in {row.asset}: a taller terminal lists them",
                    style=label,
                )
            )
        parts.append(Text(explain(row, self.multi_assets)))
        return Group(*parts)
