"""The banner for a state in which nothing is sent: rate-limited, banned, or credentials rejected."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from services.models import ConnectionStatus, LinkState
from widgets.status_line import countdown

STOPPED = (LinkState.RATE_LIMITED, LinkState.BANNED, LinkState.CREDENTIALS_REJECTED, LinkState.UNSUPPORTED)


def stop_text(status: ConnectionStatus, now_ms: int) -> str:
    """What the banner says for a stopped state: what stopped, why, and what to do or how long to wait."""
    if status.state is LinkState.CREDENTIALS_REJECTED:
        return f"CREDENTIALS REJECTED — polling stopped.\n{status.detail}\nFix the key, then press r."
    if status.state is LinkState.UNSUPPORTED:
        return f"PORTFOLIO MARGIN ACCOUNT — nothing more is asked.\n{status.detail[:1].upper()}{status.detail[1:]}."
    what = "IP BANNED by the exchange (418)" if status.state is LinkState.BANNED else "RATE-LIMITED (429)"
    return f"{what} — nothing is sent for {countdown(status.retry_at_ms, now_ms)}.\n{status.detail}"


class StopBanner(Static):
    """Shown only while the link is in a stopped state; its countdown moves with ``now_ms``."""

    status: reactive[ConnectionStatus | None] = reactive(None, repaint=False)
    now_ms: reactive[int] = reactive(0, repaint=False)

    def watch_status(self) -> None:
        self._show()

    def watch_now_ms(self) -> None:
        if self.display:
            self._show()

    def _show(self) -> None:
        status = self.status
        self.display = status is not None and status.state in STOPPED
        if status is not None and self.display:
            self.update(stop_text(status, self.now_ms))
