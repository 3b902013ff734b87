"""The benchmarks themselves: call latency, push to paint, idle cost, start-up, scale, weight."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from benchmarks.clients import CLIENTS
from benchmarks.harness import (
    API_KEY,
    SECRET,
    Call,
    Plan,
    SimProcess,
    demo_command,
    in_tmux,
    measure_idle,
    percentile,
    proc_cpu_seconds,
    proc_rss_mb,
    save,
    wait_for_numbers,
)


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


# -- 3 and 5. the real app in a real terminal ---


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
    from services.models import AccountStatus, AssetBalance
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
            table.balances = base
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
                table.balances = changed
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
