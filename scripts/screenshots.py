"""Write SVG screenshots of the dashboard's main states to screenshots/, from the demo data and a fixed clock.

Run: .venv/bin/python scripts/screenshots.py   (the README shows the files it writes)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_snapshots import scene  # noqa: E402  (the same scenes as the snapshot tests)

SHOTS = {
    "live": ("live", (120, 36)),
    "live-80x24": ("live", (80, 24)),
    "multi-assets": ("multi_assets", (120, 36)),
    "stale": ("stale", (120, 36)),
    "reconnecting": ("reconnecting", (120, 36)),
    "rate-limited": ("rate_limited", (120, 36)),
    "credentials-rejected": ("credentials_rejected", (120, 36)),
    "forty-assets": ("forty_assets", (120, 36)),
    "alert": ("alert", (120, 36)),
    "tape": ("tape", (120, 36)),
    "positions": ("positions", (120, 36)),
    "positions-80x24": ("positions", (80, 24)),
    "today": ("today", (120, 36)),
    "private": ("private", (120, 36)),
}


async def shoot(scene_name: str, size: tuple[int, int], path: Path) -> None:
    app, run_before = scene(scene_name)
    async with app.run_test(size=size) as pilot:
        await run_before(pilot)
        app.save_screenshot(filename=path.name, path=str(path.parent))


def main() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    for file_name, (scene_name, size) in SHOTS.items():
        path = out / f"{file_name}.svg"
        asyncio.run(shoot(scene_name, size, path))
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
