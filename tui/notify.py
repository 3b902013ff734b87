"""Desktop notifications for alerts, through desktop-notifier where a desktop is there; said once, quietly, when not."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from services.alerts import AlertEvent
from services.formatting import format_exact

if TYPE_CHECKING:
    from textual.widget import Widget


class Notifier:
    """Sends each alert as a desktop notification; without a desktop (or the library), tells stderr once."""

    def __init__(self, enabled: bool, *, err: Any = None) -> None:
        self.enabled = enabled
        self.err = err if err is not None else sys.stderr
        self._backend: Any = None
        self._said = False
        self._tasks: set[asyncio.Task[Any]] = set()
        if enabled:
            self._backend = self._open()

    def _open(self) -> Any:
        if not (os.environ.get("DBUS_SESSION_BUS_ADDRESS") or os.environ.get("DISPLAY") or sys.platform == "darwin"):
            self._quietly("no desktop session here")
            return None
        try:
            from desktop_notifier import DesktopNotifier  # type: ignore[import-not-found]
        except ImportError:
            self._quietly("desktop-notifier is not installed (pip install 'balance-tui[notify]')")
            return None
        return DesktopNotifier(app_name="balance-tui")

    def _quietly(self, why: str) -> None:
        if not self._said:
            self._said = True
            print(f"balance-tui: --notify: {why}; alerts show only in the app and its output", file=self.err)

    def alert(self, event: AlertEvent, *, private: bool = False) -> None:
        if self._backend is None:
            return
        title = f"balance-tui: {event.rule} {event.state}"
        value = f"value {format_exact(event.value, private=private)}" if event.value is not None else ""
        body = event.detail or value
        try:
            task = asyncio.get_running_loop().create_task(self._backend.send(title=title, message=body))
        except Exception:  # a desktop that went away must not stop the alerts themselves
            self._quietly("the desktop refused a notification")
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Toaster:
    """A file-like sink whose lines become warning toasts."""

    def __init__(self, screen: Widget) -> None:
        self.screen = screen

    def write(self, text: str) -> int:
        if text.strip():
            self.screen.notify(text.strip(), severity="warning", timeout=15)
        return len(text)

    def flush(self) -> None:
        pass


def say(screen: Widget, event: AlertEvent, notifier: Notifier | None, *, private: bool = False) -> None:
    """Say an alert that fired (a toast that stays a while, the bell) or resolved, and on the desktop with
    ``--notify``; in privacy mode the figure it fired at is masked (the rule, the trader's own words, stays)."""
    stale = " (on stale data)" if event.stale else ""
    value = f" at {format_exact(event.value, private=private)}" if event.value is not None else ""
    if notifier is not None:
        notifier.alert(event, private=private)
    if event.state == "firing":
        screen.app.bell()
        screen.notify(f"ALERT {event.rule}{value}{stale}", severity="error", timeout=20)
    else:
        screen.notify(f"resolved: {event.rule}{value}", timeout=8)
