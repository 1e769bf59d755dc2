"""Screen 2: the config editor with live (debounced) validation, open/save, dataset and model pickers, Start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from lf_common.files import atomic_write_text
from lf_tui.editor_state import EditorCheck, check_text, get_field, set_field
from lf_tui.messages import StartRequested
from lf_tui.widgets.dialogs import ConfirmScreen, PromptScreen
from lf_tui.widgets.fit_footer import FitFooter
from methods.config_file import ConfigInputError, read_config_text

DEBOUNCE_S = 0.3
PREVIEW_EXAMPLES = 5


def suggested_name(method: str) -> str:
    """A file name for a new config that does not exist yet in the working directory."""
    name, n = f"{method}_config.json", 2
    while Path(name).exists():
        name, n = f"{method}_config_{n}.json", n + 1
    return name


class EditorScreen(Screen[None]):
    """Edit a config as JSON; the validation panel lists errors and warnings with their JSON paths."""

    BINDINGS = [  # most important first: a narrow footer keeps the first that fit (`?` lists them all)
        Binding("ctrl+r,f5", "start", "Start run", priority=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "leave", "Back", priority=True, tooltip="asks first when there are unsaved changes"),
        Binding("tab", "app.focus_next", "Next pane", tooltip="out of the text: the dataset, the issues"),
        Binding("ctrl+o", "open", "Open", priority=True),
        Binding("ctrl+b", "pick_model", "Base model", priority=True),
        Binding("ctrl+d", "pick_dataset", "Dataset", priority=True),
        Binding("f4", "focus_issues", "Issues", priority=True),
        Binding("f8", "preview_data", "Preview data", priority=True),  # f6/f7 select in the TextArea
        Binding("ctrl+u", "upgrade", "Upgrade version", priority=True),
    ]
    KEYS_TITLE = "config editor"
    KEYS_NOTE = ("Tab leaves the text for the dataset field and the issues (Shift+Tab comes back); it never indents: "
                 "JSON needs no indentation.")

    def __init__(self, method: str, text: str, path: Path | None = None, save_path: Path | None = None,
                 plan_for: tuple[str, int, str] | None = None):
        """`path`: the file `text` was read from; `save_path`: where a new config goes on Ctrl+S (not yet written);
        `plan_for`: (device, budget bytes, label) the memory line plans for instead of this machine."""
        super().__init__()
        self.plan_for = plan_for
        self.method = method
        self.initial_text = text
        self.path = path if path is not None else save_path
        self.saved_text = text if path is not None else None
        self.check: EditorCheck | None = None
        self._debounce: Timer | None = None

    # typed accessors ----------------------------------------------------------
    @property
    def area(self) -> TextArea:
        return self.query_one("#config", TextArea)

    @property
    def issues(self) -> OptionList:
        return self.query_one("#issues", OptionList)

    @property
    def dataset_input(self) -> Input:
        return self.query_one("#dataset", Input)

    @property
    def dirty(self) -> bool:
        return self.area.text != (self.saved_text if self.saved_text is not None else self.initial_text)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(id="editor-title", classes="title")
        with Horizontal(id="editor-main"):
            yield TextArea.code_editor(self.initial_text, language="json", id="config", soft_wrap=False,
                                       tab_behavior="focus")
            with Vertical(id="side"):
                yield Label("Dataset (file, folder or hub id; empty = bundled sample)")
                yield Input(placeholder="bundled sample dataset", id="dataset")
                yield Label("Validation", classes="title")
                yield Static(id="verdict")
                yield Static(id="memory")
                yield OptionList(id="issues")
        yield FitFooter()

    def on_mount(self) -> None:
        self._update_title()
        self.run_validation()
        self.area.focus()

    def _update_title(self) -> None:
        name = str(self.path) if self.path else "unsaved config"
        model = get_field(self.area.text, "base_model") or "method default"
        mark = " [b red]●[/b red] modified" if self.dirty else ""
        self.query_one("#editor-title", Label).update(f"{self.method} · {name} · base model: {model}{mark}")

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self.run_validation)
        self._update_title()

    def run_validation(self) -> EditorCheck:
        text = self.area.text
        self.check = check_text(text, self.method, str(self.path or "<editor>"))
        issues = self.issues
        issues.clear_options()
        for i, issue in enumerate(self.check.errors):
            issues.add_option(Option(f"[red]✘ error:[/red] {issue.render()}", id=f"e{i}"))
        for i, issue in enumerate(self.check.warnings):
            issues.add_option(Option(f"[yellow]⚠ warning:[/yellow] {issue.render()}", id=f"w{i}"))
        if self.check.ok:
            text = f"[green]✔ valid[/green] · {len(self.check.warnings)} warning(s){self.check.global_batch_line}"
        else:
            text = f"[red]✘ {len(self.check.errors)} error(s)[/red] · {len(self.check.warnings)} warning(s)"
        report = self.check.resolved.report if self.check.resolved else None
        if report is not None and report.migrated_from:
            text += (f"\n[cyan]version {report.migrated_from} config, migrated on load "
                     f"({'; '.join(report.migration_notes)}): Ctrl+U writes the upgrade into the editor[/cyan]")
        self.query_one("#verdict", Static).update(text)
        config = self.check.resolved.config if self.check.ok and self.check.resolved else None
        if config is None:
            self.query_one("#memory", Static).update("")
        else:
            self.estimate_memory(config)
        return self.check

    @work(thread=True, exclusive=True, exit_on_error=False, group="memory")
    def estimate_memory(self, config: Any) -> None:
        """The planner's estimate for this machine (reading a hub model's config.json may take a moment); a newer
        edit's estimate supersedes this one, so a slow answer never overwrites a newer line."""
        from textual.worker import get_current_worker

        from engine.planning import PlanError, estimate, plan_target
        from lf_tui.present.memory_text import editor_line
        from methods.config_paths import resolve_config_paths

        worker = get_current_worker()
        try:
            # What Fits' device, else the config's explicit hardware.device (a config for a GPU box plans for a GPU
            # here too, as lf-tui plan does), else this machine
            device, budget, where = self.plan_for or plan_target(config.hardware.device)[:3]
            base = self.path.parent if self.path is not None else Path.cwd()  # as Ctrl+R resolves the config
            plan = estimate(resolve_config_paths(config, base), device)[0]  # type: ignore[arg-type]
            line = editor_line(plan, budget, where)
        except PlanError as exc:
            line = f"[dim]memory: no estimate ({escape(exc.message)})[/dim]"
        except Exception as exc:  # a planner bug is a missing estimate, not a dead line
            line = f"[dim]memory: no estimate ({escape(type(exc).__name__)})[/dim]"
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_memory, line)

    def _show_memory(self, line: str) -> None:
        if self.is_attached:
            self.query_one("#memory", Static).update(line)

    def action_upgrade(self) -> None:
        """Replace the text with the migrated config (then Ctrl+S saves it)."""
        check = self.run_validation()
        if check.resolved is None or not check.resolved.report.migrated_from:
            self.notify("this config is already at the current version")
            return
        import json

        self.area.load_text(json.dumps(check.resolved.upgraded_document(), indent=2) + "\n")
        self.run_validation()
        self.notify(f"upgraded from version {check.resolved.report.migrated_from}; Ctrl+S saves it")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if self.check is None or event.option.id is None:
            return
        kind, index = event.option.id[0], int(event.option.id[1:])
        issue = (self.check.errors if kind == "e" else self.check.warnings)[index]
        if issue.line:
            area = self.area
            area.cursor_location = (issue.line - 1, max(0, (issue.column or 1) - 1))
            area.focus()

    def action_focus_issues(self) -> None:
        issues = self.issues
        if issues.option_count and issues.highlighted is None:
            issues.highlighted = 0
        issues.focus()

    def action_save(self) -> None:
        if self.path is None:
            self.app.push_screen(PromptScreen("Save config as (a file name or path):", suggested_name(self.method),
                                              placeholder="my_config.json"), self._save_as)
        else:
            self._save_to(str(self.path))

    def _save_as(self, target: str | None) -> None:
        """A new file name from the prompt: refused in words when empty or a folder, asked when it exists."""
        if not target:
            self.notify("not saved: no file name given (Ctrl+S asks again)", severity="warning")
            return
        path = Path(target).expanduser()
        if path.is_dir():
            self.notify(f"not saved: {target} is a folder; give a file name, e.g. {path / suggested_name(self.method)}",
                        severity="warning", timeout=8)
            return
        if path.exists():
            self.app.push_screen(ConfirmScreen(f"{target} exists. Replace it with this config?", "Replace", "Keep it"),
                                 lambda yes: self._save_to(str(path)) if yes else self.notify("not saved"))
            return
        self._save_to(str(path))

    def _save_to(self, target: str | None) -> None:
        if not target:
            return
        text = self.area.text
        try:
            atomic_write_text(target, text)
        except OSError as exc:
            self.notify(f"cannot save {target}: {exc.strerror or exc}", severity="error", timeout=8)
            return
        self.path, self.saved_text = Path(target), text
        self._update_title()
        self.notify(f"saved {Path(target).absolute()}")

    def action_open(self) -> None:
        def ask(discard: bool | None = True) -> None:
            if discard:
                self.app.push_screen(PromptScreen("Open config file:", placeholder="path/to/config.json"), self._open)

        if self.dirty:
            self.app.push_screen(ConfirmScreen("Discard unsaved changes?", "Discard", "Keep editing"), ask)
        else:
            ask()

    def _open(self, target: str | None) -> None:
        if not target:
            return
        try:
            text = read_config_text(target)
        except ConfigInputError as exc:
            self.notify(str(exc), severity="error")
            return
        self.path, self.saved_text = Path(target), text
        self.area.load_text(text)
        self.run_validation()
        self._update_title()

    def action_pick_model(self) -> None:
        area = self.area
        current = get_field(area.text, "base_model") or "builtin:tiny-llama"
        self.app.push_screen(PromptScreen("Base model (hub id, local folder or builtin:tiny-llama):", current),
                             self._set_model)

    def _set_model(self, value: str | None) -> None:
        if not value:
            return
        area = self.area
        try:
            area.load_text(set_field(area.text, "base_model", value))
        except ValueError as exc:
            self.notify(f"fix the JSON first: {exc}", severity="error")
            return
        self.run_validation()
        self._update_title()

    def action_pick_dataset(self) -> None:
        self.dataset_input.focus()

    def action_preview_data(self) -> None:
        """The dataset as training will tokenise it with this config (an engine process loads the tokenizer)."""
        from lf_tui.screens.preview_screen import PreviewScreen

        check = self.run_validation()
        if not check.ok or check.resolved is None or check.resolved.config is None:
            first = check.errors[0].render() if check.errors else "invalid config"
            self.notify(f"cannot preview: {len(check.errors)} error(s) — {first}", severity="error", timeout=6)
            return
        dataset = self.dataset_input.value.strip() or None
        screen = PreviewScreen(f"Data preview · {dataset or 'bundled sample dataset'} · F8 in the editor · Esc closes")
        self.app.push_screen(screen)
        base = self.path.parent if self.path is not None else Path.cwd()  # as Ctrl+R resolves the config
        self.load_preview(screen, check.resolved.config, base, dataset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def load_preview(self, screen: Any, config: Any, base: Path, dataset: str | None) -> None:
        from lf_tui.cli.preview_data import request_preview

        try:
            result = request_preview(config, base, dataset, n=PREVIEW_EXAMPLES)
        except Exception as exc:  # a failed preview is a message in the dialog, never a dead editor
            result = {"error": f"{type(exc).__name__}: {exc}", "kind": "internal", "hint": ""}
        self.app.call_from_thread(screen.show, result)

    def action_start(self) -> None:
        check = self.run_validation()
        if not check.ok:
            first = check.errors[0].render() if check.errors else "invalid config"
            self.notify(f"cannot start: {len(check.errors)} error(s) — {first}", severity="error", timeout=6)
            return
        assert check.resolved is not None and check.resolved.config is not None  # check.ok says so
        self.post_message(StartRequested(check.resolved.config, self.dataset_input.value.strip() or None, self.path))

    def action_leave(self) -> None:
        if not self.dirty:
            self.app.pop_screen()
            return

        def decided(discard: bool | None) -> None:
            if discard:
                self.app.pop_screen()

        self.app.push_screen(ConfirmScreen("This config has unsaved changes. Leave and discard them?",
                                           "Discard", "Keep editing"), decided)
