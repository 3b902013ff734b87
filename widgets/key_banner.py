"""The warning that cannot be missed: the API key can do more than read (withdraw, transfer, trade), or is not
IP-restricted. Shown while the key's last audit says so; nothing otherwise."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from services.keyaudit import KeyAudit


def key_warning_text(audit: KeyAudit) -> str:
    return (
        f"⚠ THIS API KEY {', '.join(w.upper() for w in audit.warnings())}.\n"
        "Use a read-only key restricted to this IP instead (make one in API Management)."
    )


class KeyBanner(Widget):
    DEFAULT_CSS = """
    KeyBanner { height: auto; }
    """

    audit: reactive[KeyAudit | None] = reactive(None, layout=True)

    def watch_audit(self, audit: KeyAudit | None) -> None:
        self.display = audit is not None and bool(audit.warnings())

    def render(self) -> Text:
        return Text(key_warning_text(self.audit)) if self.audit is not None and self.audit.warnings() else Text("")
