"""The connection's state, always visible: live, stale, reconnecting, rate-limited, rejected — with the facts."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from services.formatting import MASK, fit_amount
from services.models import AccountSnapshot, AccountTotals, ConnectionStatus, LinkState
from widgets.columns import coarse_age
from widgets.lines import LineDrawn
from widgets.margin_pane import clock_time

# Single-width symbols only: emoji are double width in some terminals and fonts, and would shift the line.
ICONS = {
    LinkState.CONNECTING: "◌",
    LinkState.LIVE: "●",
    LinkState.RECONNECTING: "↻",
    LinkState.RATE_LIMITED: "◔",
    LinkState.BANNED: "⊘",
    LinkState.CREDENTIALS_REJECTED: "✖",
    LinkState.UNSUPPORTED: "✖",
    LinkState.PAUSED: "‖",
    LinkState.ERROR: "⚠",
    LinkState.CLOSED: "■",
}


# The user-data stream in plain words (services.trust): open is not the same as delivering.
STREAM_WORDS = {
    "connecting": "push connecting",
    "reconnecting": "push reconnecting",
    "unproven": "push open, not yet proven",
    "live": "push live",
    "silent": "push SILENT: missed a change, polling",
}


#: "updated … ago" moves in 15-second steps under a minute: whether the numbers are current is said on its own (and
#: to the second) by STALE; this says roughly when the last poll was.
UPDATED_STEP = 15


def countdown(at_ms: int | None, now_ms: int) -> str:
    if at_ms is None:
        return ""
    return f"{max(0, (at_ms - now_ms + 999) // 1000)} s"


def describe(status: ConnectionStatus, snapshot: AccountSnapshot | None, now_ms: int, stale: bool) -> tuple[str, str]:
    """The headline of the state and its CSS class."""
    state = status.state
    if state is LinkState.LIVE and stale and snapshot is not None:
        return f"STALE since {clock_time(snapshot.received_at_ms)} — no new numbers", "-stale"
    if state is LinkState.LIVE:
        return "LIVE", "-live"
    if state is LinkState.RECONNECTING:
        when = countdown(status.retry_at_ms, now_ms)
        return f"RECONNECTING in {when} (attempt {status.attempt}) — {status.detail}", "-bad"
    if state is LinkState.RATE_LIMITED:
        return (
            f"RATE-LIMITED until {clock_time(status.retry_at_ms or 0)} ({countdown(status.retry_at_ms, now_ms)})",
            "-bad",
        )
    if state is LinkState.BANNED:
        return f"BANNED until {clock_time(status.retry_at_ms or 0)} ({countdown(status.retry_at_ms, now_ms)})", "-bad"
    if state is LinkState.CREDENTIALS_REJECTED:
        return f"CREDENTIALS REJECTED — {status.detail.removeprefix('credentials rejected: ')} · r to retry", "-bad"
    if state is LinkState.UNSUPPORTED:
        return "PORTFOLIO MARGIN ACCOUNT — not supported yet (balance-tui reads USDⓈ-M futures accounts)", "-bad"
    if state is LinkState.ERROR:
        when = countdown(status.retry_at_ms, now_ms)
        return f"ERROR — {status.detail} · retrying in {when}", "-bad"
    if state is LinkState.PAUSED:
        return "PAUSED — p to resume", "-paused"
    return state.value.upper(), "-connecting"


class StatusLine(Widget):
    """One line: state, endpoint, interval, last update age, round trip, clock correction."""

    DEFAULT_CSS = """
    StatusLine { height: 1; }
    """

    # Each repaints the line only when its text changes: a snapshot a second (marks) must not redraw a line that
    # reads the same, and an idle dashboard must cost nothing.
    status: reactive[ConnectionStatus | None] = reactive(None, repaint=False)
    snapshot: reactive[AccountSnapshot | None] = reactive(None, repaint=False)
    firing: reactive[tuple[object, ...]] = reactive((), repaint=False)  # the alerts holding now
    stale: reactive[bool] = reactive(False, repaint=False)  # services.freshness, decided by the screen, bound down
    now_ms: reactive[int] = reactive(0, repaint=False)
    trouble: reactive[str] = reactive("", repaint=False)  # e.g. notifications failing: said until it clears

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown = ""

    def _changed(self) -> None:
        if self.line().plain != self._shown:
            self.refresh()

    watch_status = watch_snapshot = watch_firing = watch_stale = watch_now_ms = watch_trouble = _changed

    def render(self) -> Text:
        text = self.line()
        self._shown = text.plain
        return text

    def line(self) -> Text:
        status = self.status
        if status is None:
            return Text("◌ starting…")
        snapshot = self.snapshot
        stale = self.stale
        headline, css = describe(status, snapshot, self.now_ms, stale)
        for name in ("-live", "-stale", "-bad", "-paused", "-connecting"):
            self.set_class(name == css, name)
        icon = "⚠" if stale else ICONS.get(status.state, "·")
        text = Text.assemble((f"{icon} {headline}", "bold"))
        if self.firing:
            count = len(self.firing)
            text.append(f"  ⚑ {count} ALERT{'S' if count > 1 else ''} (! to see)", style="bold reverse")
        if self.trouble:
            text.append(f"  ⚠ {self.trouble}", style="bold")
        facts = [f"every {status.interval_ms / 1000:g} s"]
        if status.stream != "off":
            facts.append(STREAM_WORDS.get(status.stream, f"push {status.stream}"))
        if snapshot is not None:
            age = (self.now_ms - snapshot.received_at_ms) / 1000
            facts.append(f"updated {coarse_age(age, UPDATED_STEP)} ago")
            if snapshot.rtt_ms is not None:
                facts.append(f"rtt {snapshot.rtt_ms} ms")
            if abs(snapshot.clock_offset_ms) >= 1000:
                facts.append(f"clock corrected {snapshot.clock_offset_ms / 1000:+.1f} s")
        text.append("  " + " · ".join(facts), style="")
        return text


#: The widest a total may be on the one line of totals; past it, an abbreviation (never a cut-off "…").
TOTAL_WIDTH = 18
NARROW_TOTAL_WIDTH = 12
NARROW = 100


class TotalsBar(LineDrawn):
    """Account totals from ``account.status``: wallet, unrealized, margin balance, available."""

    COMPONENT_CLASSES = {"totals-bar--gain", "totals-bar--loss", "totals-bar--label"}

    DEFAULT_CSS = """
    TotalsBar { height: 1; }
    TotalsBar > .totals-bar--gain { color: $text-success; }
    TotalsBar > .totals-bar--loss { color: $text-error; }
    TotalsBar > .totals-bar--label { color: $text-muted; }
    """

    # A line drawn by hand (widgets.lines): marks move the totals every second, and a whole render() each time
    # cost more than the figures' line itself.
    totals: reactive[AccountTotals | None] = reactive(None, repaint=False)
    multi_assets: reactive[bool | None] = reactive(None, repaint=False)
    estimated: reactive[bool] = reactive(False, repaint=False)  # uPnL and margin balance computed from mark prices
    alerted: reactive[bool] = reactive(False, repaint=False)  # an account-wide alert holds: the line says so
    private: reactive[bool] = reactive(False, repaint=False)  # privacy mode: each figure the mask, no tone

    watch_totals = watch_multi_assets = watch_estimated = watch_private = LineDrawn.changed

    def watch_alerted(self, alerted: bool) -> None:
        self.set_class(alerted, "-alert")

    def text_lines(self) -> list[Text]:
        return [self.line()]

    def line(self) -> Text:
        totals = self.totals
        if totals is None:
            return Text("Totals: waiting for the first refresh", style="dim")
        unit = "USD" if self.multi_assets else "USDT"
        narrow = 0 < self.size.width < NARROW  # shorter words, so that all four figures fit on 80 columns
        approx = "≈" if self.estimated else ""
        heading = f"{unit} " if narrow else f"Totals ({unit})  "
        words = ("wallet ", " uPnL ", " margin ", " avail ") if narrow else (
            "wallet ", "  unrealized ", "  margin balance ", "  available ")  # fmt: skip
        wallet, upnl, margin, available = self._fitted(
            (
                (totals.total_wallet_balance, False, ""),
                (totals.total_unrealized_profit, True, approx),
                (totals.total_margin_balance, False, approx),
                (totals.available_balance, False, ""),
            ),
            room=(self.size.width or 10_000) - len(heading) - sum(len(word) for word in words),
            width=NARROW_TOTAL_WIDTH if narrow else TOTAL_WIDTH,
            private=self.private,
        )
        tone = "gain" if "+" in upnl else "loss" if "-" in upnl else ""
        label = self.tone("totals-bar--label")
        return Text.assemble(
            (heading, "bold"),
            (words[0], label),
            wallet,
            (words[1], label),
            (upnl, self.tone(f"totals-bar--{tone}") if tone else ""),
            (words[2], label),
            margin,
            (words[3], label),
            available,
        )

    @staticmethod
    def _fitted(
        figures: tuple[tuple[Decimal, bool, str], ...], *, room: int, width: int, private: bool = False
    ) -> list[str]:
        """The figures, each at most ``width`` wide, and all of them within ``room``: the widest gives up a character
        at a time (fewer decimals, then a visible abbreviation such as ``900.000B``), never cut at the edge."""
        if private:
            return [prefix + MASK for _value, _signed, prefix in figures]
        widths = [width] * len(figures)
        texts = [prefix + fit_amount(value, 2, w - len(prefix), signed=signed) for (value, signed, prefix), w in
                 zip(figures, widths, strict=True)]  # fmt: skip
        while sum(len(t) for t in texts) > room:
            i = max(range(len(texts)), key=lambda n: len(texts[n]))
            value, signed, prefix = figures[i]
            shorter = prefix + fit_amount(value, 2, len(texts[i]) - 1 - len(prefix), signed=signed)
            if len(shorter) >= len(texts[i]):
                break  # nothing gives way any more: the terminal is narrower than any reading of the figures
            texts[i] = shorter
        return texts
