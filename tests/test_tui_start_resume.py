"""Starting and resuming from the app, without an engine: Ctrl+R's checks run off the event loop and a refusal keeps
the editor's buffer; `r` on a run whose folder cannot take more files says why, as `lf-tui train --resume` does."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from textual.widgets import TextArea

import engine.store_space
import lf_tui.app
from lf_tui.app import LfTuiApp
from lf_tui.messages import StartRequested
from lf_tui.run_setup import config_for_quick_train
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.runs_screen import RunsScreen
from tests.ended_fixtures import ended_run
from tests.tui_helpers import open_defaults_editor, wait_for


def _messages(app: LfTuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_ctrl_r_checks_off_the_event_loop_and_a_refusal_keeps_the_buffer(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps([{"text": "a"}, {"text": "b"}]))  # a JSON array saved as .jsonl: refused before launch
    threads: list[threading.Thread] = []
    real = lf_tui.app.create_run

    def create_run(*args, **kwargs):  # the real checks, noting where they run
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(lf_tui.app, "create_run", create_run)
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_defaults_editor(pilot, app)
        editor = app.screen
        text = editor.query_one("#config", TextArea).text
        resolved, _ = config_for_quick_train("lora", "builtin:tiny-llama", max_steps=2)
        assert resolved.config is not None
        editor.post_message(StartRequested(resolved.config, str(data), None))
        await wait_for(pilot, lambda: any("data.jsonl" in m for m in _messages(app)), timeout=20, what="the refusal")
        assert threads and threads[0] is not threading.main_thread(), threads
        assert app.screen is editor and editor.query_one("#config", TextArea).text == text
        assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())  # no run folder made


async def test_r_in_the_runs_list_on_a_run_whose_disk_is_full_says_why(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run = ended_run(tmp_path / "runs", "cancelled")
    before = sorted(p.name for p in run.path.iterdir())
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.current is not None,
                       what="the runs list")
        monkeypatch.setattr(engine.store_space, "MIN_FREE_BYTES", 2**62)  # no disk has that much free: "full"
        await pilot.press("r")
        await wait_for(pilot, lambda: bool(_messages(app)), what="the refusal")
        said = _messages(app)
        assert len(said) == 1 and said[0].startswith(f"run {run.run_id}'s folder {run.path} has only "), said
        assert said[0].endswith("free some space, or make it writable, or copy the run folder to a writable runs "
                                "folder and use it there"), said
        assert isinstance(app.screen, RunsScreen)
    assert sorted(p.name for p in run.path.iterdir()) == before  # no engine started, nothing written


async def test_r_in_the_run_view_of_a_run_whose_disk_is_full_says_why_and_stays(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lf_tui.screens.run_screen import RunScreen

    run = ended_run(tmp_path / "runs", "cancelled")
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        app.open_run(run)
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.has_class("ended"),
                       what="the ended run view")
        monkeypatch.setattr(engine.store_space, "MIN_FREE_BYTES", 2**62)
        await pilot.press("r")
        await wait_for(pilot, lambda: bool(_messages(app)), what="the refusal")
        said = _messages(app)
        assert len(said) == 1 and " has only " in said[0] and "free some space" in said[0], said
        assert isinstance(app.screen, RunScreen)
