"""The methods screen says what its memory row assumes, below the matrix and in `?`."""

from __future__ import annotations

from textual.widgets import Static

from lf_tui.app import LfTuiApp
from lf_tui.screens.methods_screen import MethodsScreen
from tests.tui_helpers import wait_for


async def test_the_matrix_memory_row_says_what_it_assumes(tmp_path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        summary = " ".join(str(app.screen.query_one("#method-summary", Static).render()).split())
        assert "memory: the planner's peak for each method's defaults on Llama-2-7B on a GPU (cuda bf16" in summary
        assert "the CUDA runtime included" in summary
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: bool(app.screen.query("#help-body")), what="the help screen")
        help_text = " ".join(str(app.screen.query_one("#help-body", Static).render()).split())
        assert "defaults on Llama-2-7B on a GPU" in help_text
