"""The help screen: the keys and what the states mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

HELP = """\
# balance-tui

Balances of your USDⓈ-M Futures account, as the exchange reports them — every amount is the exchange's exact
decimal, cut (never rounded up) to the column's precision. The margin pane shows all eight decimals.

| key | does |
|---|---|
| `r` | refresh now (and retry after rejected credentials) |
| `p` | pause / resume refreshing |
| `+` / `-` | refresh faster / slower |
| `s` / `S` | sort by the next column / reverse the order |
| `z` | hide / show zero balances |
| `d` | show / hide the margin pane |
| `a` | acknowledge a margin call (shown only while there is one) |
| `!` | the alerts: what holds now, and what fired and resolved this session |
| `t` | the tape of balance changes (and why), with a sparkline of the margin balance |
| `o` | the positions, nearest liquidation first, in the table's place (again: the balances) |
| `h` | privacy mode: every amount masked, for a shared screen (again: shown); the header says PRIVATE |
| `?` | this help |
| `q` | quit |

**States.** *LIVE*: numbers arrive on time. *STALE*: three refreshes went by without new numbers — the last good ones
stay on screen, marked. *RECONNECTING*: the connection dropped; the countdown says when the next try is.
*RATE-LIMITED* / *BANNED*: the exchange said stop (429/418); nothing is sent until the time shown.
*CREDENTIALS REJECTED*: check the key, its permissions and the IP whitelist, then press `r`.

**Risk.** Under the totals: the nearest liquidation — how far the mark may move against a position before it
reaches the exchange's liquidation price (a long's below, a short's above; *PAST LIQ.* when it already has), `≈` when
read from a live mark against the last poll's price — and today's wallet change (the UTC day, counted from the
first numbers of this run) split into funding, fees, realized PnL and other. ADL ■■■■ 4 is first in line to be
auto-deleveraged.

**Weight.** Binance allows 2400 request weight a minute per IP, shared with every other program on it. The meter
shows the whole IP's count, this app's share, and what other programs used.

Press `escape` to close.
"""


class HelpScreen(ModalScreen[None]):
    """Keys and what the states mean."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        # Imported here: Markdown pulls in markdown-it, 40 ms of start-up for a screen most runs never open.
        from textual.widgets import Markdown

        with VerticalScroll(id="help"):
            yield Markdown(HELP)
