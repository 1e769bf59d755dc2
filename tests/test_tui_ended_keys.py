"""The run view of a failed run whose engine still holds the run (engine.json of a live process, no summary.json
yet): its summary offers resume (never "still running"), and `?` and the command palette list only the keys that do
something on it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
from textual.widgets import Static

from lf_tui.app import LfTuiApp
from lf_tui.screens.help_screen import screen_sections
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.run_screen import RunScreen
from tests.ended_fixtures import ended_run
from tests.tui_helpers import wait_for

LIVE_ONLY = {"Cancel run", "Checkpoint now", "Stop after eval", "Back (run goes on)"}


async def test_a_failed_run_still_held_by_its_engine_offers_resume_and_only_its_keys(tmp_path: Path) -> None:
    run = ended_run(tmp_path / "runs", "failed")
    run.file("summary.json").unlink()
    first = json.loads(run.events_path.read_text().splitlines()[0])["ts"]  # the engine that wrote them, not a newer one
    run.file("engine.json").write_text(json.dumps({"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                                   "started": first}))
    assert run.info().status == "running"  # what the store sees until the engine exits
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        app.open_run(run)

        def summary() -> str:
            found = app.screen.query("#summary") if isinstance(app.screen, RunScreen) else None
            return " ".join(str(found.first(Static).render()).split()) if found else ""

        await wait_for(pilot, lambda: "Run failed" in summary(), timeout=30, what="the failed summary")
        assert "still running" not in summary() and "r resumes it from its last checkpoint" in summary(), summary()
        screen = app.screen
        await pilot.pause(0.2)
        shown = {row.description for _, rows in screen_sections(screen) for row in rows}
        assert {"Resume", "Back"} <= shown and not LIVE_ONLY & shown, shown
        palette = {command.title for command in app.get_system_commands(screen)}
        assert "Resume" in palette and not LIVE_ONLY & palette, palette
