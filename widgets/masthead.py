"""The top line: which exchange this is (DEMO, TESTNET, LIVE, CUSTOM: never mistaken for one another), and where;
what the key may do (``read-only ✓ IP-restricted ✓``); and PRIVATE while amounts are masked."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from services.keyaudit import KeyAudit

LABELS = ("DEMO", "TESTNET", "LIVE", "CUSTOM")


class Masthead(Horizontal):
    label: reactive[str] = reactive("")  # one of LABELS, once the exchange is known
    url: reactive[str] = reactive("")
    key: reactive[KeyAudit | None] = reactive(None)  # the key's audit, once checked
    private: reactive[bool] = reactive(False)  # privacy mode: the header says PRIVATE

    def compose(self) -> ComposeResult:
        yield Static("", id="mode")
        yield Static(" PRIVATE ", id="private")
        yield Static("balance-tui", id="title")
        yield Static("", id="endpoint")
        yield Static("", id="key")

    def watch_label(self) -> None:
        self._show()

    def watch_url(self) -> None:
        self._show()

    def watch_key(self, audit: KeyAudit | None) -> None:
        if not self.is_mounted:
            return
        shown = self.query_one("#key", Static)
        shown.update(audit.summary() if audit is not None and not audit.warnings() else "")
        shown.display = audit is not None and not audit.warnings()  # the warnings have the banner under the line
        shown.set_class(audit is not None and audit.known, "-checked")

    def watch_private(self, private: bool) -> None:
        if self.is_mounted:
            self.query_one("#private", Static).display = private

    def on_mount(self) -> None:
        self.watch_key(self.key)
        self.watch_private(self.private)

    def _show(self) -> None:
        if not self.is_mounted or not self.label:
            return
        label = self.label
        mode = self.query_one("#mode", Static)
        mode.update(f" {label} ")
        for name in LABELS:
            mode.set_class(label == name, f"-{name.lower()}")
        suffix = " — simulated exchange, not real money" if label == "DEMO" else ""
        self.query_one("#endpoint", Static).update(f"{self.url}{suffix}")
