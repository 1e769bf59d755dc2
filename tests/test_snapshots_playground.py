"""Snapshot of the Playground's layout, at the screenshot size and at 80x24: two fixture runs and their base
answering side by side. The serving process is replayed (fixed texts and timings) so every machine draws the same
pixels; tests/test_tui_playground.py drives the real one. After a deliberate change of layout:
    .venv/bin/python -m pytest tests/test_snapshots_playground.py --snapshot-update
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from engine.serve_client import ServeClient
from lf_tui.app import LfTuiApp
from lf_tui.screens.playground_screen import AnswerCard, PlaygroundScreen
from lf_tui.screens.runs_screen import RunsScreen
from tests.screen_tour import SCREENSHOT_SIZE, SMALL_SIZE, steady_cursors
from tests.test_snapshots import FIXTURE_RUNS
from tests.tui_helpers import wait_for

ANSWERS = {"base": "Hello hello hello, the the the.", "20260101-120000-lora-aaaa": "Hello there, friend.",
           "20260101-120500-full_finetune-bbbb": "Hello there, my friend."}


class ReplayedServing(ServeClient):
    """Answers as the serving process does, with fixed texts and timings (no process)."""

    def start(self) -> None:
        self.on_event({"type": "ready", "protocol": 1})

    @property
    def running(self) -> bool:
        return True

    def send(self, request: dict[str, Any]) -> int | None:
        if request["type"] == "load":
            for path in request["runs"]:
                self.on_event({"type": "loaded", "run": Path(path).name, "load_s": 0.8, "bases_loaded": 1})
            self.on_event({"type": "done", "request": "load", "bases_loaded": 1})
        elif request["type"] == "generate":
            for target in request["targets"]:
                text = ANSWERS[target]
                event = {"target": target, "base_model": "builtin:tiny-llama", "text": text, "new_tokens": 7}
                self.on_event({"type": "partial", **event, "text": text[:5], "new_tokens": 2})
                self.on_event({"type": "answer", **event, "first_token_s": 0.0123, "tokens_per_s": 88.8,
                               "swap_s": 0.0002 if target != "base" else 0.0,
                               **({"note": "a full fine-tune is its own model, loaded separately"}
                                  if "full" in target else {})})
            self.on_event({"type": "done", "request": "generate"})
        return 1

    def close(self, timeout_s: float = 10.0) -> None:
        pass


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    shutil.copytree(FIXTURE_RUNS, tmp_path / "runs")
    for run in (tmp_path / "runs").iterdir():
        (run / "weights").mkdir()  # trained weights (empty: the replayed server reads nothing)
    yield tmp_path
    monkeypatch.undo()
    time.tzset()


async def ask_both(pilot: Pilot) -> None:
    app = pilot.app
    await pilot.press("f2")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                   and app.screen.query_one("#runs", DataTable).row_count == 2, what="runs listed")
    screen = app.screen
    assert isinstance(screen, RunsScreen)
    app.push_screen(PlaygroundScreen(screen.store, sorted(ANSWERS)[:2][::-1], client_class=ReplayedServing))
    await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen) and app.screen.state.ready
                   and app.screen.targets_list.option_count == 3, what="playground ready")
    await pilot.press(*"Say the greeting.", "enter")
    await wait_for(pilot, lambda: len(app.screen.query(AnswerCard)) == 3
                   and all(c.answer.done for c in app.screen.query(AnswerCard)), what="three answers")
    steady_cursors(app)
    await pilot.pause()


@pytest.mark.parametrize("size", [SCREENSHOT_SIZE, SMALL_SIZE], ids=lambda s: f"{s[0]}x{s[1]}")
def test_playground(size: tuple[int, int], in_tmp: Path, snap_compare: Any) -> None:
    assert snap_compare(LfTuiApp(runs_dir="runs"), terminal_size=size, run_before=ask_both)
