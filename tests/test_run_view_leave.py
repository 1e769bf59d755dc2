"""Leaving the run view never slows the engine: started with Ctrl+R from the default ./runs, Esc after step 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.run_store import RunStore
from lf_tui.app import LfTuiApp
from lf_tui.screens.run_screen import RunScreen
from tests.tui_helpers import start_from_editor, wait_for

STEPS = 600  # ~150 KB of step events: more than twice what a pipe buffers
TRAINING = {"max_steps": STEPS, "batch_size": 1, "max_seq_length": 32, "learning_rate": 1e-3}
MONITORING = {"logging_steps": 1, "eval_steps": 0, "save_steps": 0}


def _config_document() -> dict:
    return {"method": "lora", "training": TRAINING, "monitoring": MONITORING, "data": {"eval_split": 0.0}}


async def test_esc_right_after_the_first_step_does_not_stall_the_engine(tmp_path: Path, monkeypatch,
                                                                         learnable_dataset: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the README's way: no --runs-dir, no variable, the default ./runs
    monkeypatch.delenv("LF_TUI_RUNS_DIR", raising=False)
    app = LfTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await start_from_editor(pilot, app, {"training": TRAINING, "monitoring": MONITORING,
                                             "data": {"eval_split": 0.0}}, str(learnable_dataset))
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.last_step is not None, timeout=120, what="first step")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunScreen), what="leaving the run view")
        store = RunStore()
        assert store.root == work / "runs"
        await wait_for(pilot, lambda: store.list()[0].status == "completed", timeout=240,
                       what="the run to finish while nobody reads its pipe")
    app_run = store.list()[0]
    assert app_run.steps == STEPS
    app_time = app_run.duration_s

    config = work / "cli.json"
    config.write_text(json.dumps(_config_document()))
    cli = subprocess.run([str(Path(sys.executable).with_name("lf-tui")), "train", "-c", "cli.json", "--dataset",
                          str(learnable_dataset), "--plain"], cwd=work, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    cli_run = next(r for r in store.list() if r.run_id != app_run.run_id)
    assert cli_run.steps == STEPS
    assert app_time is not None and cli_run.duration_s is not None
    assert app_time < 1.5 * cli_run.duration_s + 3, (app_time, cli_run.duration_s)
