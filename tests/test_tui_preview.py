"""F8 in the editor: the data preview dialog, through the engine, with the config's and the working directory's paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console, Group
from textual.widgets import Input, Static, TextArea

from lf_tui.app import LfTuiApp
from lf_tui.present.preview_text import TRAINED_STYLES
from lf_tui.screens.editor_screen import EditorScreen
from lf_tui.screens.preview_screen import PreviewScreen
from tests.test_preview_data import ALPACA, write_jsonl
from tests.tiny_models import save_tiny_model
from tests.tui_helpers import wait_for


def body_text(screen: PreviewScreen) -> str:
    content = screen.query_one("#preview-body", Static).content
    console = Console(width=200, record=True, color_system=None)
    console.print(content if isinstance(content, Group) else str(content))
    return console.export_text()


@pytest.fixture
def project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd holds the dataset; proj/ holds a config whose base_model is a folder next to it (a tiny Qwen2)."""
    folder = tmp_path / "proj"
    shutil.copytree(save_tiny_model(tmp_path_factory.mktemp("m") / "qwen2", "qwen2"), folder / "model")
    (folder / "cfg.json").write_text(json.dumps({"method": "lora", "base_model": "./model",
                                                 "training": {"max_seq_length": 256}, "data": {"eval_split": 0}},
                                                indent=2))
    write_jsonl(tmp_path / "data.jsonl", ALPACA)
    write_jsonl(tmp_path / "long.jsonl", [{"instruction": "Read this. " * 100, "input": "", "output": "Done."}])
    monkeypatch.chdir(tmp_path)
    return folder / "cfg.json"


async def test_f8_previews_the_data_as_trained_and_refuses_all_masked_data(tmp_path: Path, project: Path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs", edit_path=project, edit_method="lora")
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), what="editor")
        editor = app.screen
        assert any(b.description == "Preview data" for b in editor.BINDINGS if hasattr(b, "description"))
        editor.query_one("#dataset", Input).value = "data.jsonl"  # against the working directory
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, PreviewScreen), what="preview dialog")
        preview = app.screen
        assert isinstance(preview, PreviewScreen)
        await wait_for(pilot, lambda: preview.result is not None, timeout=120, what="the engine's preview")
        assert preview.result is not None and "error" not in preview.result, preview.result
        assert preview.result["base_model"] == str((project.parent / "model").absolute())  # the config's folder
        assert preview.result["dataset"] == str((tmp_path / "data.jsonl").resolve())
        text = body_text(preview)
        assert "example 1" in text and "example 5" in text and "DROPPED: an empty response" in text
        assert "warning: 1 example(s) have no trained token left" in text
        content = preview.query_one("#preview-body", Static).content
        assert isinstance(content, Group)
        first = content.renderables[5]  # summary (2), legend, blank, example 1's header, then its tokens
        assert "Blue" in first.plain  # type: ignore[union-attr]
        trained = "".join(first.plain[s.start:s.end] for s in first.spans  # type: ignore[union-attr]
                          if str(s.style) in TRAINED_STYLES)
        assert trained == "Blue, like the sky.</s>"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is editor, what="back in the editor")

        editor.query_one("#dataset", Input).value = "long.jsonl"
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, PreviewScreen), what="preview dialog")
        refused = app.screen
        assert isinstance(refused, PreviewScreen)
        await wait_for(pilot, lambda: refused.result is not None, timeout=120, what="the refusal")
        text = " ".join(body_text(refused).split())
        assert f"{(tmp_path / 'long.jsonl').resolve()}: none of the 1 example(s) has trainable tokens" in text
        assert "fix: raise training.max_seq_length" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is editor, what="back in the editor")

        editor.query_one("#config", TextArea).load_text('{"method": "lora", "training": {"max_seq_length": 2}}')
        await pilot.press("f8")  # an invalid config is refused before any engine starts
        await pilot.pause(0.2)
        assert app.screen is editor
