"""Moving between screens never loses work or doubles a process: F1 over a modified editor asks first; F6 and the
Runs screen's `g` bring back the one Playground (one serving process) instead of opening another."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, TextArea

from lf_tui.app import LfTuiApp
from lf_tui.screens import playground_screen
from lf_tui.screens.editor_screen import EditorScreen
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.playground_screen import PlaygroundScreen
from lf_tui.screens.runs_screen import RunsScreen
from lf_tui.widgets.dialogs import ConfirmScreen
from tests.test_snapshots import FIXTURE_RUNS
from tests.test_snapshots_playground import ReplayedServing
from tests.tui_helpers import open_defaults_editor, wait_for


def _servable_fixture_runs(tmp_path: Path) -> Path:
    """The committed fixture runs, each with a weights/ folder so the Playground lists them."""
    shutil.copytree(FIXTURE_RUNS, tmp_path / "runs")
    for run in (tmp_path / "runs").iterdir():
        (run / "weights").mkdir()
    return tmp_path / "runs"


async def test_f1_over_a_modified_editor_asks_before_discarding(tmp_path: Path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_defaults_editor(pilot, app)
        editor = app.screen
        area = editor.query_one("#config", TextArea)
        area.load_text(area.text.replace('"max_steps": -1', '"max_steps": 7'))
        await wait_for(pilot, lambda: editor.dirty, what="editor modified")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard question")
        await pilot.press("n")  # stay: the edit is still there
        await wait_for(pilot, lambda: app.screen is editor)
        assert '"max_steps": 7' in area.text
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen), what="back at the methods")
        assert not any(isinstance(s, EditorScreen) for s in app.screen_stack)


async def test_one_playground_however_it_is_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[ReplayedServing] = []

    class Counted(ReplayedServing):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(playground_screen, "SERVE_CLIENT", [Counted])
    app = LfTuiApp(runs_dir=_servable_fixture_runs(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen) and app.screen.state.ready)
        first = app.screen
        assert isinstance(first, PlaygroundScreen) and first.state.chosen == []
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and app.screen.query_one("#runs", DataTable).row_count == 2, what="runs listed")
        await pilot.press("space", "g")  # mark the first run, ask it in the Playground
        await wait_for(pilot, lambda: app.screen is first and len(first.state.chosen) == 1, what="same playground")
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("f6")
        await wait_for(pilot, lambda: app.screen is first)
        assert sum(isinstance(s, PlaygroundScreen) for s in app.screen_stack) == 1 and len(started) == 1


async def test_playground_marks_chosen_runs_with_a_check_not_only_a_colour(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from lf_tui.widgets.marked_list import CHOSEN

    monkeypatch.setattr(playground_screen, "SERVE_CLIENT", [ReplayedServing])
    app = LfTuiApp(runs_dir=_servable_fixture_runs(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen) and app.screen.targets_list.option_count == 3,
                       what="targets listed")
        targets = app.screen.targets_list

        def line(i: int) -> str:
            return targets.render_line(i).text

        assert line(0).lstrip("▐ ").startswith(CHOSEN) and "base model" in line(0)  # the base: chosen by default
        assert CHOSEN not in line(1) and CHOSEN not in line(2)
        await pilot.press("f7")
        targets.highlighted = 1
        await pilot.press("space")
        await wait_for(pilot, lambda: CHOSEN in line(1), what="second entry checked")
        assert CHOSEN not in line(2) and len(app.screen.state.chosen) == 1


async def test_the_command_palette_runs_the_apps_own_commands(tmp_path: Path) -> None:
    from textual.command import CommandList, CommandPalette
    from textual.widgets import Input

    from lf_tui.screens.help_screen import HelpScreen
    from lf_tui.screens.recommend_screen import RecommendScreen

    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Methods", "Runs", "What fits", "Playground", "Keys", "Quit", "Defaults", "README"} <= titles
        screen_types: list[tuple[str, type]] = [("What fits", RecommendScreen), ("Keys", HelpScreen)]
        for words, screen_type in screen_types:
            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
            palette = app.screen
            palette.query_one(Input).value = words
            await wait_for(pilot, lambda: palette.query_one(CommandList).option_count > 0 and
                           words in str(palette.query_one(CommandList).get_option_at_index(0).prompt), what="a hit")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, screen_type), what=words)
