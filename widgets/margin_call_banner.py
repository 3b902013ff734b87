"""The MARGIN_CALL banner: what the exchange said, every amount through the one formatter."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from services.formatting import format_amount, format_exact
from services.models import MarginCall
from widgets.margin_pane import clock_time

PLACES = 8


def margin_call_text(call: MarginCall, *, private: bool = False) -> str:
    """The banner's words for one margin call (privacy mode: the mark alone of its figures shows)."""
    positions = "; ".join(
        f"{p.symbol} {p.side} {format_exact(p.amount, private=private)} at mark {format_exact(p.mark_price)}, "
        f"unrealized {format_amount(p.unrealized, PLACES, signed=True, private=private)}, "
        f"maint. {format_amount(p.maint_margin, PLACES, private=private)}"
        for p in call.positions
    )
    wallet = (
        format_amount(call.cross_wallet_balance, PLACES, private=private)
        if call.cross_wallet_balance is not None
        else "—"
    )
    return (
        f"MARGIN CALL at {clock_time(call.event_time)} — positions close to liquidation: "
        f"{positions or 'see the exchange'}.\nCross wallet {wallet}. Press a to acknowledge."
    )


class MarginCallBanner(Widget):
    """Shown while a margin call is unacknowledged; hidden otherwise."""

    DEFAULT_CSS = """
    MarginCallBanner { height: auto; }
    """

    margin_call: reactive[MarginCall | None] = reactive(None, layout=True)
    private: reactive[bool] = reactive(False, layout=True)

    def watch_margin_call(self, call: MarginCall | None) -> None:
        self.display = call is not None

    def render(self) -> Text:
        call = self.margin_call
        return Text(margin_call_text(call, private=self.private)) if call is not None else Text("")
