"""Regenerates screenshots/*.svg from the real app, on sample runs the engine trains first.

Usage: python scripts/make_screenshots.py              (trains two runs: about a minute on a laptop CPU)
       python scripts/make_screenshots.py --fixtures   (the committed snapshot runs instead: a few seconds)

The screens are reached by the steps of the screen tour (tests/screen_tour.py), the same steps the snapshot tests
(tests/test_snapshots.py) take, so what the README shows is what CI checks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project, and its tests/ folder holding the tour, import from the checkout

from engine.run_store import RunStore  # noqa: E402
from tests.screen_tour import SCREENSHOT_SIZE, TOUR, reach_and_settle, train_sample_runs  # noqa: E402

OUT = ROOT / "screenshots"
FIXTURE_RUNS = ROOT / "tests" / "fixtures" / "snapshot_runs"
STEPS = 120


async def shoot() -> list[str]:
    """One fresh app per screenshot stop of the tour, on the store ./runs; returns the files written."""
    from lf_tui.app import LfTuiApp

    written = []
    for stop in TOUR:
        if stop.screenshot is None:
            continue
        app = LfTuiApp(runs_dir="runs")
        async with app.run_test(size=SCREENSHOT_SIZE) as pilot:
            await reach_and_settle(stop)(pilot)
            app.save_screenshot(str(OUT / f"{stop.screenshot}.svg"))
        written.append(f"{stop.screenshot}.svg")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", action="store_true", help="show the committed snapshot runs, train nothing")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"training steps per sample run (default {STEPS})")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the runs list shows its store relative to the working directory: "runs"
        try:
            if args.fixtures:
                shutil.copytree(FIXTURE_RUNS, "runs")
            else:
                train_sample_runs(RunStore("runs"), args.steps)
            written = asyncio.run(shoot())
        finally:
            os.chdir(cwd)
    print(f"wrote {', '.join(written)} to {OUT}")


if __name__ == "__main__":
    main()
