"""Opening a crashed run whose engine answered a control a moment before it died: the answer is history (logged),
not a toast over the summary."""

from __future__ import annotations

import json
import time

from engine.protocol import Control
from lf_tui.app import LfTuiApp
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.run_screen import RunScreen
from tests.ended_fixtures import ended_run
from tests.tui_helpers import wait_for


async def test_a_control_answered_before_the_view_opened_is_logged_not_announced(tmp_path) -> None:
    run = ended_run(tmp_path / "runs", "crashed")
    answer = Control(ts=time.time() - 5, request="r1", action="checkpoint", status="done", step=12,
                     detail="saved checkpoints/step-12")  # 5 s ago: inside FRESH_S, before the view opened
    with open(run.events_path, "a") as fh:
        fh.write(answer.to_line())
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        app.open_run(run)
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and len(app.screen.state.controls) == 1,
                       what="the replayed control answer")
        await pilot.pause(0.5)
        assert not [n for n in app._notifications if "checkpoint: done" in n.message]
        assert any("control checkpoint: done" in text for _, text in app.screen.state.logs)
    assert json.loads(run.events_path.read_text().splitlines()[-1])["type"] == "control"
