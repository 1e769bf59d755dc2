"""The editor's memory line: the planner's estimate for the config being edited, live, for a given GPU budget."""

from __future__ import annotations

import json

import pytest

from tests.tui_helpers import wait_for


def _memory(app) -> str:
    from textual.widgets import Static

    return str(app.screen.query_one("#memory", Static).render())


async def test_the_estimate_follows_the_batch_and_clears_on_broken_json(tmp_path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import TextArea

    from lf_tui.app import LfTuiApp
    from lf_tui.present.memory_text import size
    from lf_tui.screens.editor_screen import EditorScreen
    from methods.memory_plan import parse_size

    monkeypatch.setenv("LF_TUI_GPU_MEMORY", "64MiB")
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and "memory ~" in _memory(app),
                       what="the first estimate")
        first = _memory(app)
        assert "(cuda bf16)" in first and "64.0 MiB" in first and "$LF_TUI_GPU_MEMORY" in first
        area = app.screen.query_one("#config", TextArea)
        document = json.loads(area.text)
        document["method_config"]["training"]["batch_size"] = 64
        area.load_text(json.dumps(document, indent=2))
        await wait_for(pilot, lambda: _memory(app) != first and "memory ~" in _memory(app), what="a new estimate")
        bigger = _memory(app)
        total = lambda text: parse_size(text.split("~", 1)[1].split(" (", 1)[0].replace(" ", ""))  # noqa: E731
        assert total(bigger) > total(first)
        assert "does not fit 64.0 MiB GPU: short by" in bigger
        assert size(total(bigger)) in bigger
        area.load_text(area.text[:-3])  # broken JSON: no estimate rather than a stale one
        await wait_for(pilot, lambda: _memory(app) == "", what="the line to clear")


async def test_a_config_written_for_a_gpu_plans_for_a_gpu_in_the_editor_too(tmp_path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """hardware.device "cuda" on a machine without a GPU: the editor plans as `lf-tui plan` does (cuda, no budget
    known), not for this CPU."""
    from textual.widgets import TextArea

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.editor_screen import EditorScreen

    monkeypatch.delenv("LF_TUI_GPU_MEMORY", raising=False)
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and "memory ~" in _memory(app),
                       what="the first estimate")
        assert "(cpu " in _memory(app)  # no GPU here, device auto: this machine's CPU
        area = app.screen.query_one("#config", TextArea)
        document = json.loads(area.text)
        document["method_config"].setdefault("hardware", {})["device"] = "cuda"
        area.load_text(json.dumps(document, indent=2))
        await wait_for(pilot, lambda: "(cuda " in _memory(app), what="a cuda estimate")
        assert "fits: unknown" in _memory(app)
