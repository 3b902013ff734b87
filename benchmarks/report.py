"""BENCHMARKS.md from the results: figures, verdicts against the targets, machine and versions."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from benchmarks.harness import ROOT, Plan


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


def measured_when(results: dict[str, Any]) -> str:
    """When the figures were measured (not when this report was written): one time, or each section's."""
    stamps: dict[str, str] = results.get("measured_at") or {}
    if not stamps:
        return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    times = sorted(set(stamps.values()))
    if len(times) == 1:
        return f"{times[0]} UTC"
    return "; ".join(f"{key} {when} UTC" for key, when in sorted(stamps.items()))


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
        f"Measured {measured_when(results)} on {machine()}"
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
