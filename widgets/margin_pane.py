"""The margin detail pane for the highlighted asset: what backs positions, and how close the account is to trouble."""

from __future__ import annotations

from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive

from services.formatting import format_amount, format_exact, format_ratio
from services.models import AccountTotals, AssetBalance
from services.positions import LivePosition
from widgets.lines import LineDrawn

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
                f"whole account's, counted in {asset} (in USD: the totals line); Max withdraw is {asset}'s own."
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


def _columns(rows: list[list[Text]], justify: tuple[str, ...], styles: tuple[Style | str, ...] = ()) -> list[Text]:
    """Rows of cells as lines of aligned columns, two spaces apart: a grid without a rich Table's measuring."""
    widths = [max(cell.cell_len for cell in column) for column in zip(*rows, strict=True)]
    lines = []
    for row in rows:
        line = Text(no_wrap=True)
        for i, (cell, width, how) in enumerate(zip(row, widths, justify, strict=True)):
            if i:
                line.append("  ")
            pad = " " * (width - cell.cell_len)
            style = styles[i] if i < len(styles) else ""
            if how == "right":
                line.append(pad)
            line.append_text(Text.assemble(cell, style=style) if style else cell)
            if how != "right":
                line.append(pad)
        lines.append(line)
    return lines


def _positions_lines(positions: tuple[LivePosition, ...], label: Style | str, *, private: bool = False) -> list[Text]:
    """Why available is what it is: the positions margined in this asset, their uPnL live from the marks (privacy
    mode masks size, entry, uPnL and notional, as the positions table does)."""
    rows = [[Text(h, style=label) for h in ("Symbol", "Side", "Size", "Entry", "Mark", "uPnL", "Notional")]]
    for p in positions[:MAX_POSITION_LINES]:
        approx = "≈" if p.source == "mark" and not private else ""
        cells = (
            p.symbol + (" (iso)" if p.isolated else ""),
            p.side,
            format_exact(p.amount, private=private),
            format_exact(p.entry_price, private=private),
            format_exact(p.mark_price) if p.mark_price is not None else "—",
            approx + format_amount(p.unrealized, 2, signed=True, private=private),
            approx + format_amount(p.notional, 2, private=private),
        )
        rows.append([Text(c) for c in cells])
    return _columns(rows, ("left", "left", "right", "right", "right", "right", "right"))


#: When the pairs of facts go one a line, the order they keep: the margin ratio before the flags.
ONE_A_LINE = ["Wallet", "Available", "Max withdraw", "Margin balance", "Margin ratio", "Counts as margin"]


def _facts_lines(pairs: list[tuple[str, Text]], width: int, label: Style | str) -> list[Text]:
    """Two pairs a line when they fit; one a line when they do not (a whale's balance), so every digit shows."""
    widest_label = max(len(a) for a, _ in pairs)
    widest_value = max(v.cell_len for _, v in pairs)
    if not width or 2 * (widest_label + widest_value) + 6 <= width:
        if len(pairs) % 2:
            pairs = [*pairs, ("", Text())]
        rows = [[Text(a), va, Text(b), vb] for (a, va), (b, vb) in zip(pairs[::2], pairs[1::2], strict=True)]
        return _columns(rows, ("left", "right", "left", "right"), (label, "", label, ""))
    rank = {name: i for i, name in enumerate(ONE_A_LINE)}
    ordered = sorted(pairs, key=lambda p: next((rank[n] for n in ONE_A_LINE if p[0].startswith(n)), len(rank)))
    return _columns([[Text(a), va] for a, va in ordered], ("left", "right"), (label, ""))


class MarginPane(LineDrawn):
    """Margin facts for one asset and the account it belongs to.

    Drawn line by line: when marks move, only the lines whose text changed (the estimates, the positions) are
    repainted, not the whole pane.
    """

    COMPONENT_CLASSES = {"margin-pane--warn", "margin-pane--danger", "margin-pane--label"}

    DEFAULT_CSS = """
    MarginPane { height: auto; }
    MarginPane > .margin-pane--warn { color: $text-warning; }
    MarginPane > .margin-pane--danger { color: $text-error; text-style: bold; }
    MarginPane > .margin-pane--label { color: $text-muted; }
    """

    # Repaint, never relayout: the pane has a fixed height (in the stylesheet). A change of any of these lays the
    # lines out again once (after the screen has set them all) and repaints the lines that read differently.
    row: reactive[AssetBalance | None] = reactive(None, repaint=False)
    multi_assets: reactive[bool | None] = reactive(None, repaint=False)
    totals: reactive[AccountTotals | None] = reactive(None, repaint=False)
    estimated: reactive[bool] = reactive(False, repaint=False)  # the totals carried by marks since the last poll
    positions: reactive[tuple[LivePosition, ...]] = reactive((), repaint=False)  # margined in the highlighted asset
    private: reactive[bool] = reactive(False, repaint=False)  # privacy mode: amounts masked, the ratio stays

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._wrapped: dict[tuple[str, int], list[Text]] = {}  # long lines (the explanation), wrapped to a width

    def _position_lines(self, count: int) -> int:
        """Lines for the positions table: none on a short terminal (the table of balances needs the rows)."""
        if not count or not self.is_mounted or self.screen.size.height < TALL:
            return 0
        return min(count, MAX_POSITION_LINES) + 1

    def watch_positions(self, old: tuple[LivePosition, ...], new: tuple[LivePosition, ...]) -> None:
        if len(old) != len(new):  # one line a position: the pane grows (a layout) only when the count changes
            self.styles.height = BASE_HEIGHT + self._position_lines(len(new))
        self.changed()

    watch_row = watch_multi_assets = watch_totals = watch_estimated = watch_private = LineDrawn.changed

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._wrapped.clear()  # wrapped with the old theme's tones

    def text_lines(self) -> list[Text]:
        """The pane's lines at its width: the figures, the positions, the explanation wrapped."""
        width = self.size.width
        if width <= 0:
            return []
        lines: list[Text] = []
        for line in self._paragraphs(width):
            if line.cell_len <= width:
                lines.append(line)  # a grid line or a short one: nothing to wrap
                continue
            key = (line.plain, width)
            wrapped = self._wrapped.get(key)
            if wrapped is None:
                # The explanation, mostly: the same sentence every tick, wrapped once per width.
                wrapped = self._wrapped[key] = list(line.wrap(self.app.console, width, overflow="fold"))
                if len(self._wrapped) > 32:
                    self._wrapped.pop(next(iter(self._wrapped)))
            lines.extend(wrapped)
        return lines[: max(self.size.height, 0)]

    def _paragraphs(self, width: int) -> list[Text]:
        row = self.row
        label = self.tone("margin-pane--label")
        if row is None:
            return [Text("Highlight an asset to see its margin.", style=label)]
        mode = {True: "on", False: "off", None: "unknown"}[self.multi_assets]
        counts = {True: "yes", False: "no", None: "not reported"}[row.margin_available]
        private = self.private
        pairs: list[tuple[str, Text]] = [
            ("Counts as margin", Text(counts)),
            ("Multi-Assets mode", Text(mode)),
            ("Wallet", Text(format_amount(row.wallet_balance, PLACES, private=private))),
            (
                f"Available (account, in {row.asset})" if row.available_scope == "account" else "Available",
                Text(format_amount(row.available_balance, PLACES, private=private)),
            ),
            ("Max withdraw", Text(format_amount(row.max_withdraw_amount, PLACES, private=private))),
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
            style = self.tone(f"margin-pane--{tone}") if tone else ""
            approx = "≈" if self.estimated else ""
            margin = format_amount(totals.total_margin_balance, PLACES, private=private)
            maint = format_amount(totals.total_maint_margin, PLACES, private=private)
            pairs += [
                (f"Margin balance {unit}", Text(approx + margin)),
                (f"Maint. margin {unit}", Text(approx + maint)),
                ("Margin ratio" + (" (est.)" if approx else ""), Text(approx + format_ratio(ratio), style=style)),
            ]
        source = f"{row.source} · {row.source_method} · received {clock_time(row.received_at_ms)}"
        lines = [Text.assemble((row.asset, "bold"), ("   " + source, label)), *_facts_lines(pairs, width, label)]
        if self._position_lines(len(self.positions)):
            lines += _positions_lines(self.positions, label, private=private)
        elif self.positions:
            held = len(self.positions)
            lines.append(
                Text(
                    f"{held} position{'s' if held > 1 else ''} in {row.asset}: a taller terminal lists them",
                    style=label,
                )
            )
        lines.append(Text(explain(row, self.multi_assets)))
        return lines
