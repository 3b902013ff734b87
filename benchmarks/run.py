"""balance-tui's benchmarks, side by side with the official SDK and ccxt, all against the simulator on loopback.

Run:   .venv/bin/pip install -e '.[test,bench]' && .venv/bin/python -m benchmarks.run
Quick: .venv/bin/python -m benchmarks.run --quick --out /tmp/BENCHMARKS.md   (what CI runs, so this cannot rot)

Writes BENCHMARKS.md (figures, machine, date, versions) and the raw samples behind every figure to
benchmarks/results/*.json. Benchmarks are measured and reported here, never asserted by timed tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
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


# -- 1. client call latency -------------------------------------------------------------------------------------


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


async def ours(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from services.client import WsApiClient
    from services.endpoints import Credentials
    from services.signing import HmacSigner

    client = WsApiClient(url, Credentials(API_KEY, HmacSigner(SECRET)))
    await client.connect()
    return (lambda: client.account_balance(v2=False)), client.close


async def sdk(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    from binance_common.configuration import ConfigurationWebSocketAPI
    from binance_sdk_derivatives_trading_usds_futures import DerivativesTradingUsdsFutures

    config = ConfigurationWebSocketAPI(api_key=API_KEY, api_secret=SECRET, stream_url=url)
    connection = await DerivativesTradingUsdsFutures(config_ws_api=config).websocket_api.create_connection()

    async def call() -> Any:
        return (await connection.futures_account_balance()).data()  # parsed, as ours is

    async def close() -> None:
        await connection.close_connection(close_session=True)

    return call, close


async def ccxt_client(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    import ccxt.pro

    exchange = ccxt.pro.binanceusdm({"apiKey": API_KEY, "secret": SECRET, "enableRateLimit": False})
    exchange.urls["api"]["ws"]["ws-api"]["linear"] = url
    exchange.markets = {}  # preset: loading them would ask Binance's REST API
    exchange.markets_by_id = {}
    await exchange.fetch_balance_ws({"method": "account.balance"})  # opens the connection
    return (lambda: exchange.fetch_balance_ws({"method": "account.balance"})), exchange.close


async def bare(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """The floor: sign, send, receive, json.loads — no matching, no models, nothing else."""
    import websockets

    ws = await websockets.connect(url, compression=None)
    ids = iter(range(1, 10**9))

    async def call() -> Any:
        params = f"apiKey={API_KEY}&timestamp={time.time_ns() // 1_000_000}"
        signature = hmac.new(SECRET.encode(), params.encode(), hashlib.sha256).hexdigest()
        timestamp = int(params.rsplit("=", 1)[1])
        request = {
            "id": next(ids),
            "method": "account.balance",
            "params": {"apiKey": API_KEY, "timestamp": timestamp, "signature": signature},
        }
        await ws.send(json.dumps(request))
        return json.loads(await ws.recv())

    return call, ws.close


CLIENTS: dict[str, Callable[[str], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]]] = {
    "balance-tui": ours,
    "official SDK": sdk,
    "ccxt fetch_balance_ws": ccxt_client,
    "bare websockets": bare,
}


async def client_latency(plan: Plan) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in CLIENTS}
    round_medians: dict[str, list[float]] = {name: [] for name in CLIENTS}
    errors: dict[str, str] = {}
    with SimProcess() as sim:
        opened: dict[str, tuple[Call, Callable[[], Awaitable[None]]]] = {}
        for name, factory in CLIENTS.items():
            try:
                opened[name] = await factory(sim.url)
                await opened[name][0]()  # warm
            except Exception as exc:  # a client that cannot run here is reported, not hidden
                errors[name] = f"{type(exc).__name__}: {exc}"
        names = list(opened)
        for round_index in range(plan.rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]  # alternate who goes first
            for name in order:
                call = opened[name][0]
                this_round = []
                for _ in range(plan.calls_per_round):
                    started = time.perf_counter()
                    await call()
                    this_round.append((time.perf_counter() - started) * 1000)
                samples[name] += this_round
                round_medians[name].append(statistics.median(this_round))
        for _, close in opened.values():
            with contextlib.suppress(Exception):
                await close()
    save("client_latency", {"unit": "ms", "samples": samples, "round_medians": round_medians, "errors": errors})
    summary = {
        name: {
            "n": len(values),
            "p50": statistics.median(values),
            "p99": percentile(values, 99),
            "median of round medians": statistics.median(round_medians[name]),
        }
        for name, values in samples.items()
        if values
    }
    return {"summary": summary, "errors": errors}


# -- 2. push to painted -----------------------------------------------------------------------------------------


async def push_to_paint(plan: Plan) -> dict[str, Any]:
    from services.endpoints import Credentials
    from services.settings import Settings
    from services.signing import HmacSigner
    from services.simulator import ExchangeSimulator
    from tui.app import BalanceApp
    from tui.wiring import Exchange
    from widgets.balance_table import BalanceTable

    sim = ExchangeSimulator()
    sim.add_hmac_key(API_KEY, SECRET)
    sim.start_ticker(1.0)  # marks moving every second meanwhile (positions held): the normal case now
    applied: list[float] = []
    painted: list[float] = []
    async with sim:

        @contextlib.asynccontextmanager
        async def factory(settings: Settings) -> Any:
            yield Exchange(sim.ws_url, sim.stream_url, Credentials(API_KEY, HmacSigner(SECRET)))

        app = BalanceApp(Settings(), exchange_factory=factory)
        async with app.run_test(size=(120, 36)) as pilot:
            table = app.dashboard.query_one(BalanceTable)
            for _ in range(500):
                if (
                    app.dashboard.status is not None
                    and app.dashboard.status.stream in ("unproven", "live")
                    and table.row_count
                ):
                    break
                await pilot.pause(0.01)
            # Headless, Textual composes each update and hands it to _display, which would write it to the
            # terminal; the time of that hand-over is "painted".
            writes: list[float] = []
            original_display = app._display

            def timed_display(*args: Any, **kwargs: Any) -> None:
                writes.append(time.perf_counter())
                original_display(*args, **kwargs)

            app._display = timed_display  # type: ignore[method-assign]
            for _ in range(plan.pushes):
                started = time.perf_counter()
                event = await sim.push_balance_change("USDT", "0.01")
                wallet = Decimal(event["a"]["B"][0]["wb"])
                shown = f"{wallet:,.8f}"
                deadline = started + 5
                while table.get_cell("USDT", "wallet").plain != shown and time.perf_counter() < deadline:
                    await asyncio.sleep(0)
                cell_at = time.perf_counter()
                while (not writes or writes[-1] < cell_at) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.0005)
                if time.perf_counter() >= deadline:
                    raise RuntimeError("a pushed value never reached the screen")
                applied.append((cell_at - started) * 1000)
                painted.append((writes[-1] - started) * 1000)
                await pilot.pause(0.02)  # pushes a realistic distance apart
    save("push_to_paint", {"unit": "ms", "applied_to_table": applied, "written_to_terminal": painted})
    return {
        "n": len(painted),
        "applied p50": statistics.median(applied),
        "painted p50": statistics.median(painted),
        "painted p99": percentile(painted, 99),
    }


# -- 3 and 5. the real app in a real terminal -------------------------------------------------------------------


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
def in_tmux(command: str, session: str = "bench") -> Any:
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
        if "122,607" in tmux("capture-pane", "-p", "-t", "bench"):
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


def idle_cost(plan: Plan) -> dict[str, Any]:
    if shutil.which("tmux") is None:
        return {"skipped": "tmux is not installed"}
    results: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    # The dashboard alone: the exchange runs in a process of its own, so its work is not counted as the app's.
    keys = f"BINANCE_API_KEY={API_KEY} BINANCE_API_SECRET={SECRET}"
    scenarios: dict[str, tuple[tuple[str, ...], str]] = {
        "marks moving (4 positions, marks every 1 s, live uPnL)": (("--no-pushes",), keys),
        "account moving (marks as above, and a balance push every 5 s)": ((), keys),
        "nothing changing": (("--still",), keys),
    }
    for name, (sim_args, env) in scenarios.items():
        with SimProcess(*sim_args) as sim:
            command = demo_command().replace("--demo", f"--ws-url {sim.url}").replace("env ", f"env {env} ")
            results[name], raw[name] = measure_idle(command, plan.idle_seconds)
    name = "floor: a static 20-row DataTable"
    results[name], raw[name] = measure_idle(f"{sys.executable} -m benchmarks.static_table", plan.idle_seconds)
    name = "baseline: plain DataTable rewriting 20 cells/s"
    results[name], raw[name] = measure_idle(f"{sys.executable} -m benchmarks.plain_table", plan.idle_seconds)
    if plan.soak_seconds:
        rss_series = []
        with SimProcess() as sim:
            command = demo_command().replace("--demo", f"--ws-url {sim.url}").replace("env ", f"env {keys} ")
            with in_tmux(command) as pid:
                time.sleep(3.0)
                started = time.perf_counter()
                cpu0 = proc_cpu_seconds(pid)
                while time.perf_counter() - started < plan.soak_seconds:
                    rss_series.append((round(time.perf_counter() - started, 1), proc_rss_mb(pid)))
                    time.sleep(30)
                rss_series.append((round(time.perf_counter() - started, 1), proc_rss_mb(pid)))
                cpu = (proc_cpu_seconds(pid) - cpu0) / (time.perf_counter() - started) * 100
        results["10-minute run, account moving"] = {
            "rss MB first": rss_series[0][1],
            "rss MB last": rss_series[-1][1],
            "rss MB max": max(r for _, r in rss_series),
            "cpu % of a core": cpu,
        }
        raw["10-minute rss series"] = rss_series
    save("idle_cost", raw)
    return results


def startup(plan: Plan) -> dict[str, Any]:
    if shutil.which("tmux") is None:
        return {"skipped": "tmux is not installed"}
    times = []
    for _ in range(plan.startups):
        with in_tmux(demo_command()):
            seconds = wait_for_numbers()
        if seconds is not None:
            times.append(seconds)
    save("startup", {"unit": "s", "samples": times})
    return {"n": len(times), "median s": statistics.median(times) if times else None, "max s": max(times, default=None)}


# -- 4. scale ---------------------------------------------------------------------------------------------------


async def scale(plan: Plan) -> dict[str, Any]:
    from services.clock import VirtualClock
    from services.models import AccountSnapshot, AccountStatus, AssetBalance
    from services.settings import Settings
    from services.simulator import SimulatedAccount
    from tui.app import BalanceApp
    from widgets.balance_table import BalanceTable

    results: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for rows in (20, 200, 2000):
        account = SimulatedAccount()
        account.add_assets(rows - len(account.assets))
        status = AccountStatus.model_validate(account.status(v2=True))
        base = {
            r.asset: AssetBalance.from_status(r, method="v2/account.status", received_at_ms=1) for r in status.assets
        }
        app = BalanceApp(Settings(), clock=VirtualClock())
        timings: list[float] = []
        repaint: list[float] = []
        async with app.run_test(size=(120, 36)) as pilot:
            table = app.dashboard.query_one(BalanceTable)
            table.show(AccountSnapshot(balances=base), 0)
            await pilot.pause()
            assets = list(base)
            current = dict(base)
            for step in range(5 if plan.quick else 20):
                # 10 % of the rows, one wallet cell each, changed from the snapshot before (not from the first:
                # that would move the previous step's rows back too, and count half the rows that changed).
                changed = dict(current)
                for asset in assets[step % 10 :: 10]:
                    row = changed[asset]
                    changed[asset] = row.model_copy(update={"wallet_balance": row.wallet_balance + step + 1})
                current = changed
                started = time.perf_counter()
                table.show(AccountSnapshot(balances=changed), 0)
                timings.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await pilot.pause()
                repaint.append((time.perf_counter() - started) * 1000)
        cells = len(assets[::10]) * 3  # wallet changes move wallet, and the row's text in 3 columns at most
        results[f"{rows} assets"] = {
            "changed rows": len(assets[::10]),
            "show() ms p50": statistics.median(timings),
            "show() µs per changed cell": statistics.median(timings) * 1000 / len(assets[::10]),
            "next paint ms p50": statistics.median(repaint),
        }
        raw[str(rows)] = {"show_ms": timings, "paint_ms": repaint, "cells_upper_bound": cells}
    save("scale", raw)
    return results


async def drain(feed: Any) -> None:
    async for _ in feed.events():
        pass


# -- 6. weight --------------------------------------------------------------------------------------------------


async def weight(plan: Plan) -> dict[str, Any]:
    from services.client import WsApiClient
    from services.clock import VirtualClock
    from services.endpoints import Credentials
    from services.feed import AccountFeed
    from services.signing import HmacSigner
    from services.simulator import ExchangeSimulator
    from services.stream import UserDataStream

    results: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    minutes = 3 if plan.quick else 10
    for label, with_stream in (("stream live", True), ("stream off", False)):
        clock = VirtualClock()
        sim = ExchangeSimulator(clock=clock)
        sim.add_hmac_key(API_KEY, SECRET)
        async with sim:
            sim.start_ticker(1.0, push_every=5)  # the demo's activity: a fee pushed every 5 s
            client = WsApiClient(sim.ws_url, Credentials(API_KEY, HmacSigner(SECRET)), clock=clock)
            feed = AccountFeed(client, stream=UserDataStream(client, sim.stream_url) if with_stream else None)

            task = asyncio.create_task(drain(feed))
            first = sim.server_time_ms() // 60_000
            for _ in range(minutes * 60 * 4):
                await clock.advance(0.25)
                await asyncio.sleep(0.001)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.close()
            per_minute = [sim.own_weight(w) for w in range(first, first + minutes)]
        raw[label] = per_minute
        steady = per_minute[1:] or per_minute
        results[label] = {"weight per minute (median, after the first)": statistics.median(steady), "max": max(steady)}
    save("weight", raw)
    return results


# -- report -----------------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    names = [
        "textual",
        "websockets",
        "pydantic",
        "binance-sdk-derivatives-trading-usds-futures",
        "binance-common",
        "ccxt",
    ]
    found = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"
    )


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value < 100 else f"{value:,.0f}"
    return str(value)


def table(rows: dict[str, dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows.values():
        columns += [c for c in row if c not in columns]
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def scale_verdict(scale: dict[str, Any]) -> list[str]:
    per_cell = scale.get("2000 assets", {}).get("show() µs per changed cell")
    if per_cell is None:
        return []
    return [f"Target (issue 12) at 2,000 assets ≤ 50 µs per changed cell: {verdict(per_cell, 50)} ({per_cell:.1f} µs)."]


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    return "**met**" if value <= limit else "**missed**"


def idle_ratios(idle: dict[str, Any]) -> list[str]:
    """Each figure as a ratio to the floor apps of the same run: what a machine's speed cannot change."""
    if "skipped" in idle:
        return []

    def cpu(prefix: str) -> float | None:
        row = next((v for k, v in idle.items() if k.startswith(prefix)), None)
        return row.get("cpu % of a core") if isinstance(row, dict) else None

    still, moving = cpu("nothing changing"), cpu("marks moving")
    floor, busy = cpu("floor"), cpu("baseline")
    lines = []
    if still is not None and floor:
        ratio = still / floor
        lines.append(f"Nothing changing ÷ static table: **{ratio:.2f}×** (target ≤ 2×: {verdict(ratio, 2)}).")
    if moving is not None and busy:
        ratio = moving / busy
        lines.append(
            f"Marks moving ÷ 20-cells-a-second table: **{ratio:.2f}×** (target ≤ 0.5×: {verdict(ratio, 0.5)})."
        )
    soak = next((v for k, v in idle.items() if k.startswith("10-minute")), None)
    if isinstance(soak, dict) and soak.get("rss MB max") is not None:
        first, last, peak = soak["rss MB first"], soak["rss MB last"], soak["rss MB max"]
        lines.append(
            f"RSS over the 10-minute run: {first:.1f} → {last:.1f} MB, at most {peak:.1f} MB "
            f"(target ≤ 70 MB: {verdict(peak, 70)}; the series is in `results/idle_cost.json`)."
        )
    return lines


def report(results: dict[str, Any], plan: Plan) -> str:
    latency = results["latency"]["summary"]
    ours_p50 = latency.get("balance-tui", {}).get("p50")
    sdk_p50 = latency.get("official SDK", {}).get("p50")
    ratio = f"{ours_p50 / sdk_p50:.2f}×" if ours_p50 and sdk_p50 else "n/a"
    paint = results["push"]
    idle = results["idle"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}"
        + (" — **quick smoke run: too few samples to mean anything**" if plan.quick else "")
        + ".",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        "",
        "Everything runs against the project's simulator on loopback; the machines are shared and noisy, so each",
        "comparison alternates its contenders round by round and reports medians. The raw samples behind every figure",
        "are in `benchmarks/results/`. Regenerate with `python -m benchmarks.run`.",
        "",
        "## 1. Client call latency (`account.balance`, ms)",
        "",
        f"{plan.rounds} rounds × {plan.calls_per_round} calls per client, the order rotating each round; the simulator",
        "runs in its own process. Every client parses the reply (ours into exact models, the SDK into its models,",
        "ccxt into its balance structure); the bare round trip signs, sends, receives and `json.loads`, nothing more.",
        "",
        table(latency),
        "",
        f"**balance-tui ÷ official SDK, p50: {ratio}** (target ≤ 1.0×).",
    ]
    if results["latency"]["errors"]:
        lines += ["", "Could not run: " + "; ".join(f"{k}: {v}" for k, v in results["latency"]["errors"].items())]
    lines += [
        "",
        "## 2. Push → painted (ms)",
        "",
        "From the simulator sending an ACCOUNT_UPDATE to the new wallet value being in the table, and to the next",
        "write of the screen to the terminal (headless driver), in the real app.",
        "",
        table({"ACCOUNT_UPDATE → screen, with 4 positions' marks moving every second": paint}),
        "",
        f"Targets (issue 12): p50 ≤ 20 ms **{'met' if paint['painted p50'] <= 20 else 'missed'}** "
        f"({paint['painted p50']:.1f} ms), p99 ≤ 40 ms **{'met' if paint['painted p99'] <= 40 else 'missed'}** "
        f"({paint['painted p99']:.1f} ms).",
        "",
        "## 3. Idle cost of the real app in tmux",
        "",
        f"CPU share of one core over {plan.idle_seconds:g} s and resident memory, after start-up, of the dashboard alone",
        "(`--ws-url` to a simulator in its own process; `--still` for an account that does not change: no",
        "positions, no pushes). Measured in the same run: Textual's floor, a static 20-row DataTable",
        "(`benchmarks/static_table.py`), and a plain DataTable rewriting 20 cells a second (`benchmarks/plain_table.py`).",
        "",
        table(idle) if "skipped" not in idle else f"Skipped: {idle['skipped']}.",
        "",
        *idle_ratios(idle),
        "",
        "Targets (issue 12): nothing changing ≤ 2× the static table; marks moving ≤ 0.5× the 20-cells-a-second",
        "table; RSS ≤ 70 MB and flat. A share of one core is read from /proc in 10 ms ticks, so a 60 s figure moves",
        "by about 0.02 points from run to run; the floor apps are measured in the same run for that reason.",
        "",
        "## 4. Scale: a refresh where 10 % of the rows change",
        "",
        table(results["scale"]),
        "",
        "`show()` reconciles the snapshot with the table and writes only the cells whose text changed (a changed",
        "wallet moves one cell a row); the paint is Textual's, and covers only the written rows on screen.",
        "",
        *scale_verdict(results["scale"]),
        "",
        "## 5. Start-up to first numbers on screen (demo, tmux)",
        "",
        table({"balance-tui --demo": results["startup"]}),
        "",
        f"Target (issue 12) ≤ 0.6 s median: {verdict(results['startup'].get('median s'), 0.6)}.",
        "",
        "## 6. The dashboard's own request weight per minute (default settings)",
        "",
        table(results["weight"]),
        "",
        "With the stream live: a reconcile poll a minute plus one after each burst of pushes (the demo pushes every",
        "5 s), each weight 5, capped at 5 % of the IP's 2400 (120). Stream off: a poll every 2 s, capped at 10 % (240).",
    ]
    notes = ROOT / "benchmarks" / "NOTES.md"
    if notes.exists() and not plan.quick:
        lines += ["", notes.read_text().strip()]
    return "\n".join(lines) + "\n"


async def main_async(plan: Plan, wanted: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for key, title, measure in (
        ("latency", "1. client latency", client_latency),
        ("push", "2. push to paint", push_to_paint),
        ("scale", "4. scale", scale),
        ("weight", "6. weight", weight),
    ):
        if key in wanted:
            print(f"{title}…", flush=True)
            results[key] = await measure(plan)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few samples of everything")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--only",
        help="comma-separated sections to measure again (latency,push,scale,weight,idle,startup); "
        "the others are taken from the last full run's summary",
    )
    args = parser.parse_args(argv)
    plan = Plan(quick=args.quick)
    if plan.quick:
        global RESULTS
        RESULTS = Path(tempfile.mkdtemp()) / "results"
    summary_file = RESULTS / "summary.json"
    wanted = set(args.only.split(",")) if args.only else {"latency", "push", "scale", "weight", "idle", "startup"}
    results: dict[str, Any] = json.loads(summary_file.read_text()) if args.only else {}
    results.update(asyncio.run(main_async(plan, wanted)))
    if "idle" in wanted:
        print("3. idle cost…", flush=True)
        results["idle"] = idle_cost(plan)
    if "startup" in wanted:
        print("5. start-up…", flush=True)
        results["startup"] = startup(plan)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary_file.write_text(json.dumps(results, indent=1, default=str) + "\n")
    args.out.write_text(report(results, plan))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
