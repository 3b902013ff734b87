"""The terminal can vanish under a dashboard left open all day (its terminal server killed, an ssh link cut): the way
out must never wait on it, and a signal must always end the process.

Seen once: the terminal went away, Textual's writer thread died on its first failed write, its queue of 30 writes
filled, and the event loop waited on ``Queue.put`` for good — where asyncio's signal handlers never run, so SIGTERM
was ignored for 42 minutes. Two guards:

- :class:`TerminalFile` is what Textual's driver writes to: once a write fails, the terminal is taken to be gone and
  every later write is dropped, so the writer thread lives, its queue drains and nothing waits on it.
- :func:`install_last_resort` arms, on SIGTERM or SIGHUP, an exit with the signal's code a few seconds later, from a
  thread of its own: the orderly way out (terminal restored, listen key stopped or its stop timed out) comes first.

This module leans on Textual internals (the Linux driver's ``_file``); Textual is pinned exactly and
``tests/test_textual_contract.py`` fails when they change.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import IO, Any

#: Seconds after SIGTERM/SIGHUP before the process is ended whatever it is doing: longer than the orderly way out
#: takes when the exchange is gone too (the listen key's stop waits 3 s), shorter than a person's patience.
LAST_RESORT_AFTER = 4.5


class TerminalFile:
    """The terminal's stream, for Textual's writer thread: writes that fail mark the terminal gone, and are dropped."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # EIO once the terminal has gone; ValueError if the stream was closed
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.gone = True

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return not self.gone and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def driver_class() -> type[Any] | None:
    """A Linux driver that writes through :class:`TerminalFile` (None where Textual uses another driver)."""
    if os.name != "posix":
        return None
    from textual.drivers.linux_driver import LinuxDriver

    class TerminalSafeDriver(LinuxDriver):
        """Textual's Linux driver, whose writes never fail (and so never stop its writer thread)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            assert self._file is not None  # LinuxDriver always opens it
            self._file = TerminalFile(self._file)  # type: ignore[assignment]  # a file in all it is used for

    return TerminalSafeDriver


class _LastResort:
    """A thread that, once armed, waits ``after`` seconds and then ends the process with the code it was given."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._code = 0
        self._armed = threading.Event()
        threading.Thread(target=self._run, name="balance-tui-last-resort", daemon=True).start()

    def arm(self, code: int) -> None:
        if not self._armed.is_set():
            self._code = code
            self._armed.set()

    def _run(self) -> None:
        self._armed.wait()
        time.sleep(self.after)
        os._exit(self._code)


def install_last_resort(signals: Iterable[signal.Signals], after: float = LAST_RESORT_AFTER) -> None:
    """On any of ``signals``, end the process with 128 + the signal ``after`` seconds later, whatever it is doing.

    A Python-level handler runs in the main thread even while it waits on a lock (asyncio's handlers, which the
    orderly way out uses, run only when the event loop does). The handler asyncio installed is kept: the event loop
    still hears of the signal through its wake-up file, as before.
    """
    last_resort = _LastResort(after)
    for signum in signals:
        previous = signal.getsignal(signum)

        def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
            last_resort.arm(128 + number)
            if callable(previous):
                previous(number, frame)

        signal.signal(signum, handler)
