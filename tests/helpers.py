"""Test helpers, one per job: drive a virtual clock while real sockets work, wait for a condition, collect events,
run the CLI, build the app against a simulator. No test module imports another; what they share lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from services.clock import VirtualClock
from services.events import FeedEvent, SnapshotEvent, StatusEvent
from services.feed import AccountFeed
from services.models import AccountSnapshot, LinkState

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from services.endpoints import Credentials
    from services.settings import Settings
    from services.simulator import ExchangeSimulator
    from tui.app import BalanceApp
    from tui.screens.dashboard import DashboardScreen
    from tui.wiring import Exchange
    from widgets.balance_table import BalanceTable

T = TypeVar("T")

# A known test secret: the leak tests look for it in every captured output.
TEST_SECRET = "TESTSECRET-5b7f0c1e9a2d4c6b8e0f1a3c5e7d9b2f4a6c8e0d2f4b6a8c"
TEST_API_KEY = "bt-test-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
# The key and secret of the spot docs' HMAC example (PROTOCOL.md §3 test vectors).
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"

# The real-time pause that lets loopback I/O happen between steps of virtual time. It paces a loop that waits
# for a condition; no result depends on its length.
IO_TURN = 0.002
SYNC_QUERY = b"\x1b[?2026$p"  # DECRQM: does the terminal support synchronized output?
SYNC_SUPPORTED = b"\x1b[?2026;2$y"  # yes (reset for now)
SYNC_START, SYNC_END = b"\x1b[?2026h", b"\x1b[?2026l"  # a frame begins, ends
CURSOR_MOVE = re.compile(r"\x1b\[\d+;\d+H")  # move the cursor to a row and column
CONTROL = re.compile(r"\x1b(?:\[[0-9;?$]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")  # CSI, OSC, other ESC


async def drive(clock: VirtualClock, awaitable: Awaitable[T], *, step: float = 0.5, limit: float = 3600.0) -> T:
    """Await ``awaitable`` while moving ``clock`` forward ``step`` seconds at a time (at most ``limit`` seconds)."""
    task = asyncio.ensure_future(awaitable)
    moved = 0.0
    while not task.done():
        await asyncio.sleep(IO_TURN)
        if task.done():
            break
        if moved >= limit:
            task.cancel()
            raise AssertionError(f"still waiting after {limit} s of virtual time")
        await clock.advance(step)
        moved += step
    return task.result()


async def until(
    predicate: Callable[[], bool],
    *,
    clock: VirtualClock | None = None,
    step: float = 0.5,
    limit: float | None = None,
    pilot: Pilot[int] | None = None,
    on_step: Callable[[], None] | None = None,
    why: Callable[[], str] | None = None,
) -> None:
    """Wait until ``predicate()`` holds: the one waiting helper.

    With a clock, time moves ``step`` seconds between looks, up to ``limit`` seconds of virtual time (600 unless
    said); without one, a condition that needs only real I/O is met within ``limit`` seconds of real time (10 unless
    said: loopback I/O, or a process of its own starting) or not at all. Under Pilot, the app's own loop gets its
    turn between looks (``pilot``); ``on_step`` runs at every look (to record what was seen).
    """
    loop = asyncio.get_running_loop()
    if limit is None:
        limit = 600.0 if clock is not None else 10.0
    real_deadline = loop.time() + limit
    moved = 0.0
    while True:
        if on_step is not None:
            on_step()
        if predicate():
            return
        if pilot is not None:
            await pilot.pause(IO_TURN)
        else:
            await asyncio.sleep(IO_TURN)
        if predicate():
            return
        if clock is not None:
            if moved >= limit:
                raise AssertionError(f"condition not met within {limit} s of virtual time {why() if why else ''}")
            await clock.advance(step)
            moved += step
        elif loop.time() > real_deadline:
            raise AssertionError(f"condition not met within {limit:g} s {why() if why else ''}")


class Collector(Generic[T]):
    """Runs an async iterator in a task and keeps everything it yields, until stopped."""

    def __init__(self, source: AsyncIterator[T]) -> None:
        self.items: list[T] = []
        self.task = asyncio.create_task(self._run(source))

    async def _run(self, source: AsyncIterator[T]) -> None:
        async for item in source:
            self.items.append(item)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class Recorder(Collector[FeedEvent]):
    """Runs a feed in a task and keeps every event it yields."""

    def __init__(self, feed: AccountFeed) -> None:
        super().__init__(feed.events())
        self.feed = feed

    @property
    def events(self) -> list[FeedEvent]:
        return self.items

    @property
    def snapshots(self) -> list[AccountSnapshot]:
        return [e.snapshot for e in self.items if isinstance(e, SnapshotEvent)]

    @property
    def states(self) -> list[LinkState]:
        return [e.status.state for e in self.items if isinstance(e, StatusEvent)]

    @property
    def streams(self) -> list[str]:
        return [e.status.stream for e in self.items if isinstance(e, StatusEvent)]


def pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey, passphrase: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


# -- the CLI as a separate process ------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "tui.cli"]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BALANCE_TUI_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    env.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")  # never the machine's real keyring
    env.update(extra)
    return env


class Watch:
    """``balance-tui watch --jsonl`` in a process of its own, its lines read as they come.

    A test waits for what the lines say (:meth:`until`) rather than for a ``--duration`` of real time: a process that
    starts slowly on a busy machine then delays the test, never fails it.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())
        assert process.stderr is not None
        self.errors = asyncio.create_task(process.stderr.read())  # read all along: a full pipe would stall it

    @classmethod
    async def start(cls, *args: str, env: dict[str, str]) -> Watch:
        return cls(await cls.spawn(*CLI, "watch", "--jsonl", *args, env=env))

    @staticmethod
    async def spawn(*argv: str, env: dict[str, str]) -> asyncio.subprocess.Process:
        """A process of any command line, its output piped (for a balance-tui started some other way)."""
        return await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )

    async def _read(self) -> None:
        import json

        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            self.lines.append(json.loads(raw))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["type"] == kind]

    def stream_connected(self) -> bool:
        """The last status line says the push stream is open (it may not be proven yet)."""
        statuses = self.of_type("status")
        return bool(statuses) and statuses[-1]["stream"] in ("unproven", "live")

    async def until(self, predicate: Callable[[], bool], *, limit: float = 30.0) -> None:
        """Wait until the lines so far make ``predicate`` true; the process ending first fails the test."""

        def met() -> bool:
            assert not self.reader.done() or predicate(), f"watch ended early: {self.lines[-3:]}"
            return predicate()

        await until(met, limit=limit)

    async def stop(self, *, terminate: bool = True) -> tuple[int, str]:
        """End it as ``kill`` does (SIGTERM: listen key stopped, exit 143), or with ``terminate=False`` wait for it to
        end by itself; returns the exit code and stderr."""
        if terminate and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it ended by itself a moment ago
                self.process.terminate()
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self.reader
        return code, (await self.errors).decode()


async def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# -- a real terminal ----------------------------------------------------------------------------------------------


class Terminal:
    """A child process on a pseudo-terminal, everything it writes kept and played on a terminal emulator (pyte), so
    a test reads the screen a person would see."""

    def __init__(self, args: list[str], env: dict[str, str], *, size: tuple[int, int] = (100, 30)) -> None:
        import fcntl
        import struct
        import subprocess
        import termios
        import threading

        import pyte

        columns, lines = size
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.master = master
        self.output = bytearray()
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self._answered = False
        self._in_frame = False
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm-256color"}, start_new_session=True
        )
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        held = bytearray()  # what came since the last whole frame
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed its side (or the test closed ours)
                return
            if not chunk:
                return
            with self._lock:
                self.output.extend(chunk)
                if not self._answered and SYNC_QUERY in self.output:
                    # Say what a modern terminal says (kitty, WezTerm, foot, iTerm2): synchronized output is
                    # supported. The app then brackets each frame, and the screen a test reads is one the app
                    # finished drawing, as on those terminals, not a frame half written.
                    self._answered = True
                    os.write(self.master, SYNC_SUPPORTED)
                held.extend(chunk)
                self._stream.feed(self._whole_frames(held))

    def _whole_frames(self, held: bytearray) -> bytes:
        """Take out of ``held`` what may be shown now: everything outside a synchronized frame, and each frame
        once its end has come."""
        shown = bytearray()
        while True:
            if self._in_frame:
                end = held.find(SYNC_END)
                if end < 0:
                    return bytes(shown)
                end += len(SYNC_END)
                self._in_frame = False
            else:
                end = held.find(SYNC_START)
                if end < 0:
                    # Keep back a tail that may be the start of a frame's opening, split between two reads.
                    end = len(held) - next(
                        (n for n in range(len(SYNC_START) - 1, 0, -1) if held.endswith(SYNC_START[:n])), 0
                    )
                    shown += held[:end]
                    del held[:end]
                    return bytes(shown)
                self._in_frame = True
            shown += held[:end]
            del held[:end]

    def lines(self) -> list[str]:
        """The screen now, one string a line, trailing spaces cut."""
        with self._lock:
            return [line.rstrip() for line in self.screen.display]

    def shows(self, text: str) -> bool:
        return any(text in line for line in self.lines())

    def mark(self) -> int:
        """Where the output stands now: :meth:`written_since` reads what came after."""
        with self._lock:
            return len(self.output)

    def written_since(self, mark: int) -> list[str]:
        """What the app wrote to the terminal after ``mark``, as text: one string for each run it wrote at a cursor
        position it moved to (a line, or the part of one, that it drew again), styles and controls taken out."""
        with self._lock:
            text = bytes(self.output[mark:]).decode(errors="replace")
        runs = CURSOR_MOVE.split(text)
        return [plain for run in runs if (plain := CONTROL.sub("", run)).strip()]

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def stopped(self) -> bool:
        """The process is stopped (ctrl+z, SIGTSTP): its state in /proc is T."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")

    async def finish(self, timeout: float = 30) -> int:
        code = await asyncio.to_thread(self.process.wait, timeout)
        await asyncio.to_thread(self.reader.join, 5)
        with contextlib.suppress(OSError):
            os.close(self.master)
        return code

    def close(self) -> None:
        """Close the terminal's side, as a terminal emulator that goes away does: the child's writes fail from then."""
        with contextlib.suppress(OSError):
            os.close(self.master)

    def wait(self, timeout: float) -> int | None:
        """The exit code within ``timeout`` seconds, or None if the process is still there."""
        import subprocess

        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


# -- the app against a simulator --------------------------------------------------------------------------------


def factory(
    sim: ExchangeSimulator, credentials: Credentials, *, rest: bool = False
) -> Callable[[Settings], contextlib.AbstractAsyncContextManager[Exchange]]:
    """The app's exchange: the simulator; with ``rest`` its REST side too (the key's permissions are asked)."""
    from tui.wiring import Exchange

    @contextlib.asynccontextmanager
    async def open_sim(settings: Settings) -> AsyncIterator[Exchange]:
        yield Exchange(sim.ws_url, sim.stream_url, credentials, rest_url=sim.rest_url if rest else None)

    return open_sim


def dashboard(app: BalanceApp) -> DashboardScreen:
    return app.dashboard


def state(app: BalanceApp) -> LinkState | None:
    """The link's state the dashboard shows (None before the first)."""
    status = dashboard(app).status
    return status.state if status is not None else None


def table(app: BalanceApp) -> BalanceTable:
    from widgets.balance_table import BalanceTable

    return dashboard(app).query_one(BalanceTable)


async def started(pilot: Pilot[int], app: BalanceApp) -> None:
    await until(lambda: dashboard(app).snapshot is not None and table(app).row_count > 0, pilot=pilot)
