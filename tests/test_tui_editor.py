"""The editor as a user drives it: live validation, jump to an error, refused start, unsaved-change guard."""

from __future__ import annotations

import json

from textual.widgets import TextArea

from lf_tui.app import LfTuiApp
from lf_tui.screens.editor_screen import EditorScreen
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.widgets.dialogs import ConfirmScreen
from tests.tui_helpers import issues_text, wait_for


async def _open_lora_defaults(pilot) -> TextArea:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen), what="methods screen")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), what="editor")
    return app.screen.query_one("#config", TextArea)


async def test_typing_an_invalid_value_shows_its_path_and_fixing_it_clears(tmp_path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        area = await _open_lora_defaults(pilot)
        line = next(i for i, text in enumerate(area.text.splitlines()) if text.strip().startswith('"r":'))
        area.cursor_location = (line, len(area.document.get_line(line)) - 1)  # just before the comma
        await pilot.press("backspace", "backspace", "5", "1", "2")
        await wait_for(pilot, lambda: "method_specific.r" in issues_text(app), what="error in panel")
        assert "512 is above the maximum 256" in issues_text(app)
        assert f"line {line + 1}" in issues_text(app)
        await pilot.press("ctrl+r")  # Start is refused while invalid
        await pilot.pause(0.2)
        assert isinstance(app.screen, EditorScreen) and not list((tmp_path / "runs").glob("*"))
        area.cursor_location = (0, 0)
        await pilot.press("f4", "enter")  # select the error: the cursor jumps to it
        assert area.cursor_location[0] == line
        area.cursor_location = (line, len(area.document.get_line(line)) - 1)
        await pilot.press("backspace", "backspace", "backspace", "1", "6")
        await wait_for(pilot, lambda: issues_text(app) == "", what="panel to clear")


async def test_json_syntax_error_and_warning(tmp_path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        area = await _open_lora_defaults(pilot)
        area.load_text('{"method": "lora", "training": {"epochs": }}')
        await wait_for(pilot, lambda: "not valid JSON" in issues_text(app) or "Expecting value" in issues_text(app),
                       what="syntax error")
        area.load_text(json.dumps({"method": "lora", "method_specific": {"lora_alfa": 3}}))
        await wait_for(pilot, lambda: "did you mean 'lora_alpha'" in issues_text(app), what="typo warning")


async def test_unsaved_changes_are_never_lost_silently(tmp_path) -> None:
    target = tmp_path / "mine.json"
    app = LfTuiApp(runs_dir=tmp_path / "runs", edit_path=target, edit_method="qlora")
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), what="editor")
        area = app.screen.query_one("#config", TextArea)
        assert '"qlora"' in area.text and not target.exists()
        area.insert(" ")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm on leave")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), what="back in editor")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm on quit")
        await pilot.press("n")
        await pilot.press("ctrl+s")
        await wait_for(pilot, target.exists, what="saved file")
        assert json.loads(target.read_text())["method_config"]["method_name"] == "qlora"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen), what="left without prompt")


async def test_old_config_is_migrated_and_can_be_upgraded(tmp_path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"method": "lora", "version": "1.0", "training": {"num_train_epochs": 2}}))
    app = LfTuiApp(runs_dir=tmp_path / "runs", edit_path=old)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        verdict = str(app.screen.query_one("#verdict").render())
        assert "version 1.0 config, migrated" in verdict and "num_train_epochs" in verdict
        await pilot.press("ctrl+u", "ctrl+s")
        await wait_for(pilot, lambda: json.loads(old.read_text()).get("version") == "2.0", what="upgraded file")
        assert json.loads(old.read_text())["training"] == {"epochs": 2}


def _notes(app) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def test_ctrl_s_on_a_new_config_saves_the_offered_name_or_says_why_not(tmp_path, monkeypatch) -> None:
    from textual.widgets import Input

    from lf_tui.widgets.dialogs import PromptScreen

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lora_config.json").write_text("{}")  # taken: the offer is the next free name
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        area = await _open_lora_defaults(pilot)
        editor = app.screen
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), what="save-as prompt")
        field = app.screen.query_one(Input)
        assert field.value == "lora_config_2.json"
        field.value = ""
        await pilot.press("enter")  # nothing typed: refused in words, nothing written
        await wait_for(pilot, lambda: "not saved: no file name given" in _notes(app), what="refusal")
        assert app.screen is editor and sorted(p.name for p in tmp_path.glob("*.json")) == ["lora_config.json"]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("enter")  # the offered name as it stands
        await wait_for(pilot, lambda: (tmp_path / "lora_config_2.json").exists(), what="saved file")
        assert (tmp_path / "lora_config_2.json").read_text() == area.text and not editor.dirty
        assert "saved " in _notes(app) and "lora_config_2.json" in str(editor.query_one("#editor-title").render())


async def test_f1_then_enter_on_a_modified_editor_keeps_the_text(tmp_path) -> None:
    """The discard question has the safe answer focused: Enter (meant for the methods list) keeps the buffer."""
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        area = await _open_lora_defaults(pilot)
        editor = app.screen
        area.insert('"mine": 1,')
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard question")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is editor, what="back in the editor")
        assert '"mine": 1,' in area.text and editor.dirty
