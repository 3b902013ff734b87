"""What every benchmark uses: the plan, the simulator in its own process, the real app in tmux, samples saved."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
#: The tmux session of this run: two runs at once (a CI job beside a developer's) must not kill each other's.
SESSION = f"bench-{os.getpid()}"
API_KEY = "bench-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
SECRET = "bench-secret-not-a-real-credential-0123456789abcdefghijklmnop"


@dataclass
class Plan:
    """How much to measure: the full run, or a smoke that only proves the command still works."""

    quick: bool

    @property
    def rounds(self) -> int:
        return 2 if self.quick else 5

    @property
    def calls_per_round(self) -> int:
        return 15 if self.quick else 250

    @property
    def pushes(self) -> int:
        return 10 if self.quick else 300

    @property
    def idle_seconds(self) -> float:
        return 4.0 if self.quick else 60.0

    @property
    def soak_seconds(self) -> float:
        return 0.0 if self.quick else 600.0

    @property
    def startups(self) -> int:
        return 1 if self.quick else 7


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def save(name: str, data: Any) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")


class SimProcess:
    """The simulator in its own process, so its CPU does not count against the client being measured."""

    def __init__(self, *extra: str) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.extra = extra

    def __enter__(self) -> SimProcess:
        port_file = Path(tempfile.mkdtemp()) / "port"
        self.process = subprocess.Popen(
            # Thousands of calls a minute: far past the real 2400-weight limit, which is not what is measured here.
            [
                sys.executable,
                "-m",
                "tui.cli",
                "sim",
                "--port-file",
                str(port_file),
                "--hmac",
                f"{API_KEY}={SECRET}",
                "--weight-limit",
                "100000000",
                *self.extra,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(1000):
            if port_file.exists() and port_file.read_text().strip():
                self.port = int(port_file.read_text())
                return self
            time.sleep(0.01)
        raise RuntimeError("the simulator did not start")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws-fapi/v1"


Call = Callable[[], Awaitable[Any]]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def in_tmux(command: str, session: str = SESSION) -> Any:
    tmux("kill-session", "-t", session)
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", f"exec {command}")
    pid = int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").strip())
    try:
        yield pid
    finally:
        tmux("kill-session", "-t", session)


def demo_command(*extra: str) -> str:
    env = f"XDG_CONFIG_HOME={tempfile.mkdtemp()}"  # no config file of the user's: the plain demo
    return f"env {env} {sys.executable} -m tui.cli --demo {' '.join(extra)}"


def wait_for_numbers(timeout: float = 15.0) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if "122,607" in tmux("capture-pane", "-p", "-t", SESSION):
            return time.perf_counter() - started
        time.sleep(0.01)
    return None


def measure_idle(command: str, seconds: float) -> tuple[dict[str, float], dict[str, Any]]:
    with in_tmux(command) as pid:
        time.sleep(3.0)  # past start-up
        cpu0, t0, rss0 = proc_cpu_seconds(pid), time.perf_counter(), proc_rss_mb(pid)
        time.sleep(seconds)
        cpu1, t1, rss1 = proc_cpu_seconds(pid), time.perf_counter(), proc_rss_mb(pid)
    share = (cpu1 - cpu0) / (t1 - t0) * 100
    return (
        {"cpu % of a core": share, "rss MB start": rss0, "rss MB end": rss1},
        {"cpu_seconds": [cpu0, cpu1], "wall": [t0, t1], "rss_mb": [rss0, rss1]},
    )
