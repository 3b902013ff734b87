"""balance-tui's benchmarks, side by side with the official SDK and ccxt, all against the simulator on loopback.

Run:   .venv/bin/pip install -e '.[test,bench]' && .venv/bin/python -m benchmarks.run
Quick: .venv/bin/python -m benchmarks.run --quick --out /tmp/BENCHMARKS.md   (what CI runs, so this cannot rot)

Writes BENCHMARKS.md (figures, machine, date, versions) and the raw samples behind every figure to
benchmarks/results/*.json. Benchmarks are measured and reported here, never asserted by timed tests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness import ROOT, Plan
from benchmarks.report import report
from benchmarks.scenarios import client_latency, idle_cost, push_to_paint, scale, startup, weight


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
    if plan.quick:  # a smoke run keeps its samples out of the repository's results
        harness.RESULTS = Path(tempfile.mkdtemp()) / "results"
    summary_file = harness.RESULTS / "summary.json"
    wanted = set(args.only.split(",")) if args.only else {"latency", "push", "scale", "weight", "idle", "startup"}
    results: dict[str, Any] = json.loads(summary_file.read_text()) if args.only else {}
    results.update(asyncio.run(main_async(plan, wanted)))
    if "idle" in wanted:
        print("3. idle cost…", flush=True)
        results["idle"] = idle_cost(plan)
    if "startup" in wanted:
        print("5. start-up…", flush=True)
        results["startup"] = startup(plan)
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
    measured = results.setdefault("measured_at", {})  # section → when it was measured (UTC): the report's stamp
    measured.update({key: stamp for key in wanted if key in results})
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    summary_file.write_text(json.dumps(results, indent=1, default=str) + "\n")
    args.out.write_text(report(results, plan))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
