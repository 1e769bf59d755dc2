"""The lf-tui Textual app: a router between screens (methods → editor → run view, runs); never imports torch."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from engine.launcher import EngineProcess, launch
from engine.run_store import RunDir, RunStore
from lf_tui.messages import OpenEditor, OpenPlayground, OpenRun, ResumeRequested, StartRequested
from lf_tui.run_setup import RunSetupError, create_run
from lf_tui.screens.editor_screen import EditorScreen
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.run_screen import RunScreen
from lf_tui.screens.runs_screen import RunsScreen
from lf_tui.widgets.dialogs import ConfirmScreen
from methods.catalogue import get_catalogue
from methods.config_models import MethodConfigBase


class LfTuiApp(App[None]):
    """Pick a method, edit and validate its config, train, watch, compare."""

    TITLE = "lf-tui"
    SUB_TITLE = "fine-tune LLMs from the terminal"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("f1", "show_methods", "Methods"),
        Binding("f2", "show_runs", "Runs"),
        Binding("f3", "show_recommend", "What fits"),
        Binding("f6", "show_playground", "Playground", priority=True),  # over the editor text's F6 (select line)
        Binding("ctrl+q", "quit_safely", "Quit", priority=True),
        Binding("question_mark", "help", "Keys", tooltip="this list"),  # a text field takes ? as a character (the footer dims it)
    ]

    def __init__(self, runs_dir: str | Path | None = None, edit_path: Path | None = None, edit_method: str = "lora"):
        super().__init__()
        self.store = RunStore(runs_dir)
        self.edit_path = edit_path
        self.edit_method = edit_method
        self._starting = False  # Ctrl+R's checks and launch are under way in a thread

    def on_mount(self) -> None:
        self.push_screen(MethodsScreen())
        if self.edit_path is not None:
            self.open_file(self.edit_path, self.edit_method)

    # keys and commands -----------------------------------------------------
    def action_help(self) -> None:
        """Every key of the current screen and the global ones (`?` again closes it)."""
        from lf_tui.screens.help_screen import EVERYWHERE_NOTES, HelpScreen, screen_sections

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        note = getattr(self.screen, "KEYS_NOTE", "")
        self.push_screen(HelpScreen(screen_sections(self.screen), [note] * bool(note) + list(EVERYWHERE_NOTES)))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): this screen's keys and the app's, by name, then Textual's own (its Quit
        and Keys replaced by ours: Quit asks about unsaved configs)."""
        from lf_tui.screens.help_screen import screen_sections

        for heading, rows in screen_sections(screen):
            for row in rows:
                if row.action == "command_palette":
                    continue
                namespace = self if heading == "Everywhere" else screen
                yield SystemCommand(row.description, f"{row.keys} · {heading.lower()}",
                                    partial(self.run_action, row.action, namespace))
        yield from (c for c in super().get_system_commands(screen) if c.title not in ("Quit", "Keys"))

    # navigation -----------------------------------------------------------
    @on(OpenEditor)
    def open_editor(self, message: OpenEditor) -> None:
        if message.text is not None:
            self.push_screen(EditorScreen(message.method, message.text, plan_for=message.plan_for))
            return
        try:
            text = message.template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # a method folder from LF_TUI_METHODS_PATH may lack it
            self.notify(f"{message.template}: cannot read it ({exc})", severity="error", timeout=10)
            return
        self.push_screen(EditorScreen(message.method, text))

    def open_file(self, path: Path, method: str) -> None:
        """`lf-tui edit PATH`: the file, or the method's defaults to be saved there when it does not exist."""
        if path.exists():
            from methods.config_file import ConfigInputError, read_config_text

            try:
                text = read_config_text(path)
            except ConfigInputError as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return
            self.push_screen(EditorScreen(method, text, path))
        else:
            text = get_catalogue().get(method).defaults_path.read_text(encoding="utf-8")
            self.push_screen(EditorScreen(method, text, None, save_path=path))  # nothing is written until Ctrl+S

    @on(OpenRun)
    def _open_run(self, message: OpenRun) -> None:
        self.open_run(message.run)

    def open_run(self, run: RunDir, process: EngineProcess | None = None) -> None:
        self.push_screen(RunScreen(run, process))

    def action_show_methods(self) -> None:
        """Back to the methods matrix (the screens above it close); a modified editor among them asks first."""

        def go(yes: bool | None = True) -> None:
            if yes:
                while len(self.screen_stack) > 2:
                    self.pop_screen()

        dirty = [s for s in self.screen_stack[2:] if isinstance(s, EditorScreen) and s.is_mounted and s.dirty]
        if not dirty:
            go()
            return
        self.push_screen(ConfirmScreen("A config has unsaved changes. Go back to the methods and discard them?",
                                       "Discard", "Stay"), go)

    def action_show_runs(self) -> None:
        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self.store))

    def action_show_recommend(self) -> None:
        from lf_tui.screens.recommend_screen import RecommendScreen

        if not isinstance(self.screen, RecommendScreen):
            self.push_screen(RecommendScreen())

    def action_show_playground(self) -> None:
        self.open_playground(None)

    @on(OpenPlayground)
    def _open_playground(self, message: OpenPlayground) -> None:
        self.open_playground(message.run_ids)

    def open_playground(self, run_ids: list[str] | None) -> None:
        """One Playground (and one serving process) per app: the open one comes back to the top (the screens
        above it close, unless a modified editor is among them), with `run_ids` chosen when given."""
        from lf_tui.screens.playground_screen import PlaygroundScreen

        existing = next((s for s in self.screen_stack if isinstance(s, PlaygroundScreen)), None)
        if existing is None:
            self.push_screen(PlaygroundScreen(self.store, run_ids))
            return
        above = self.screen_stack[self.screen_stack.index(existing) + 1:]
        if any(isinstance(s, EditorScreen) and s.dirty for s in above):
            self.notify("a config above the Playground has unsaved changes: save it (Ctrl+S) or close it first",
                        severity="warning")
            return
        while self.screen is not existing:
            self.pop_screen()
        if run_ids:
            existing.choose_runs(run_ids)

    # runs -------------------------------------------------------------------
    @on(StartRequested)
    def _start_requested(self, message: StartRequested) -> None:
        """Ctrl+R: the checks (the store, the data file's first records, a hub model's cache or reachability, which
        may take seconds) and the launch run in a thread; the editor and its buffer stay while they do."""
        if self._starting:
            self.notify("a run is being set up: wait for it to open", severity="warning")
            return
        self._starting = True
        self._start_in_thread(message.config, message.dataset, message.config_path)

    @work(thread=True, exit_on_error=False, group="start-run")
    def _start_in_thread(self, config: MethodConfigBase, dataset: str | None, config_path: Path | None) -> None:
        try:
            outcome = self._prepare_start(config, dataset, config_path)
        finally:
            self._starting = False
        self.call_from_thread(self._started, outcome)

    def start_run(self, config: MethodConfigBase, dataset: str | None, config_path: Path | None = None) -> None:
        """Create a run (the config's relative paths resolve against its file's folder) and watch it; here and now
        (Ctrl+R does the same in a thread)."""
        self._started(self._prepare_start(config, dataset, config_path))

    def _prepare_start(self, config: MethodConfigBase, dataset: str | None,
                       config_path: Path | None) -> tuple[RunDir, EngineProcess] | str:
        """The new run and its engine, or why not (one sentence)."""
        try:
            run = create_run(self.store, config, dataset, None, config_path.parent if config_path else None)
        except (RunSetupError, OSError) as exc:  # the store's OSError is one sentence: folder, cause, what to do
            return str(exc)
        try:
            return run, launch(run)
        except OSError as exc:  # no engine process (a full disk, a missing interpreter): the editor stays open
            return f"cannot start the engine for run {run.run_id}: {exc.strerror or exc}"

    def _started(self, outcome: tuple[RunDir, EngineProcess] | str) -> None:
        if isinstance(outcome, str):
            self.notify(outcome, severity="error", timeout=12)
            return
        run, process = outcome
        self.notify(f"started run {run.run_id}")
        self.open_run(run, process)

    @on(ResumeRequested)
    def _resume_requested(self, message: ResumeRequested) -> None:
        self.resume_run(message.run)

    def resume_run(self, run: RunDir) -> None:
        """Continue a run from its last checkpoint, as `lf-tui train --resume` does: refused first (with the reason)
        when it cannot resume or its folder cannot be written."""
        refusal = run.resume_refusal() or run.writable_refusal()
        if refusal:
            self.notify(refusal, severity="warning", timeout=8)
            return
        try:
            launch(run, resume=True, pipe=False)  # the view follows events.jsonl: every segment, old and new
        except OSError as exc:
            self.notify(f"cannot resume run {run.run_id}: {exc.strerror or exc}", severity="error", timeout=12)
            return
        self.notify(f"resuming run {run.run_id}")
        self.open_run(run)

    # quitting -----------------------------------------------------------------
    def unsaved_editors(self) -> list[EditorScreen]:
        return [s for s in self.screen_stack if isinstance(s, EditorScreen) and s.is_mounted and s.dirty]

    def action_quit_safely(self) -> None:
        if not self.unsaved_editors():
            self.exit()
            return

        def decided(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmScreen("A config has unsaved changes. Quit and discard them? "
                                       "(Running trainings keep going.)", "Quit", "Stay"), decided)
