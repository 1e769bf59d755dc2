"""Regenerates screenshots/*.svg from the real app, on sample runs the engine trains first.

Usage: python scripts/make_screenshots.py   (takes about a minute on a laptop CPU)
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.launcher import launch  # noqa: E402
from engine.run_store import RunStore  # noqa: E402
from lf_tui.run_setup import config_for_quick_train, create_run  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (150, 46)


def sample_runs(store: RunStore) -> None:
    for method, steps in (("lora", 120), ("full_finetune", 120)):
        resolved, _ = config_for_quick_train(method, "builtin:tiny-llama", max_steps=steps)
        run = create_run(store, resolved.config, None, None)
        proc = launch(run)
        for _ in proc.events():
            pass
        proc.wait()


async def shoot(store: RunStore) -> None:
    from textual.widgets import DataTable, TextArea

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.compare_screen import CompareScreen
    from lf_tui.screens.run_screen import RunScreen
    from lf_tui.screens.runs_screen import RunsScreen

    app = LfTuiApp(runs_dir=store.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "methods.svg"))
        await pilot.press("enter")
        await pilot.pause(0.5)
        area = app.screen.query_one("#config", TextArea)
        doc = json.loads(area.text)
        doc["method_config"]["method_specific"]["r"] = 512
        doc["method_config"]["method_specific"]["lora_alfa"] = 8
        area.load_text(json.dumps(doc, indent=2))
        await pilot.pause(1.0)
        app.save_screenshot(str(OUT / "editor.svg"))
        await pilot.press("escape", "y")
        await pilot.press("f2")
        while not (isinstance(app.screen, RunsScreen) and app.screen.query_one("#runs", DataTable).row_count >= 2):
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        app.save_screenshot(str(OUT / "runs.svg"))
        await pilot.press("enter")
        while not (isinstance(app.screen, RunScreen) and app.screen.model.finished is not None):
            await pilot.pause(0.1)
        await pilot.pause(0.6)
        app.save_screenshot(str(OUT / "run.svg"))
        await pilot.press("escape")
        await pilot.pause(0.2)
        await pilot.press("space", "down", "space", "c")
        while not isinstance(app.screen, CompareScreen):
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "compare.svg"))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs")
        sample_runs(store)
        asyncio.run(shoot(store))
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.svg')))} to {OUT}")


if __name__ == "__main__":
    main()
