"""The screen tour: the steps that bring a fresh LfTuiApp to each screen, for make_screenshots.py and the snapshots."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.pilot import Pilot

from tests.tui_helpers import wait_for

if TYPE_CHECKING:
    from engine.run_store import RunDir, RunStore

SAMPLE_METHODS = ("lora", "full_finetune")
SAMPLE_MODEL = "builtin:tiny-llama"
SCREENSHOT_SIZE = (150, 46)
SMALL_SIZE = (80, 24)  # what many SSH terminals open at: every screen must stay usable there
STEP_TIMEOUT_S = 20.0


def train_sample_runs(store: RunStore, steps: int) -> list[RunDir]:
    """Train one short real run per sample method with the engine, to the end (the runs the tour shows)."""
    from engine.launcher import launch
    from lf_tui.run_setup import config_for_quick_train, create_run

    runs = []
    for method in SAMPLE_METHODS:
        resolved, _ = config_for_quick_train(method, SAMPLE_MODEL, max_steps=steps)
        run = create_run(store, resolved.config, None, None)
        proc = launch(run)
        for _ in proc.events():
            pass
        proc.wait()
        runs.append(run)
    return runs


async def _until(pilot: Pilot, condition: Callable[[], bool], what: str) -> None:
    """Poll for `condition`; 20 s is ample once the runs exist, and a broken screen fails fast."""
    await wait_for(pilot, condition, timeout=STEP_TIMEOUT_S, what=what)


def _text(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def steady_cursors(app: Any) -> None:
    """Text cursors stop blinking (shown while focused), so a picture never depends on when it is taken."""
    for screen in app.screen_stack:
        for widget in screen.query("*"):
            if getattr(widget, "cursor_blink", False):
                widget.cursor_blink = False


# the steps: each starts from an app that has just been launched ---------------------------------------------------
async def methods(pilot: Pilot) -> None:
    from textual.widgets import DataTable

    from lf_tui.screens.methods_screen import MethodsScreen

    app = pilot.app
    await _until(pilot, lambda: isinstance(app.screen, MethodsScreen) and
                   app.screen.query_one("#matrix", DataTable).row_count > 0, what="methods matrix")


async def editor_defaults(pilot: Pilot) -> None:
    """Enter on the first method: its defaults in the editor, validated."""
    from lf_tui.screens.editor_screen import EditorScreen

    app = pilot.app
    await methods(pilot)
    await pilot.press("enter")
    await _until(pilot, lambda: isinstance(app.screen, EditorScreen) and "warning(s)" in _text(app, "#verdict")
                 and "memory" in _text(app, "#memory"), what="editor with its verdict and memory estimate")
    steady_cursors(app)  # before the first blink: what the editor draws behind a dialog must not depend on it


async def editor_with_error(pilot: Pilot) -> None:
    """The defaults with r=512 (a warning) and a typo'd key lora_alfa (an error) typed in."""
    from textual.widgets import TextArea

    app = pilot.app
    await editor_defaults(pilot)
    area = app.screen.query_one("#config", TextArea)
    doc = json.loads(area.text)
    doc["method_config"]["method_specific"]["r"] = 512
    doc["method_config"]["method_specific"]["lora_alfa"] = 8
    area.load_text(json.dumps(doc, indent=2))
    await _until(pilot, lambda: "error" in _text(app, "#verdict"), what="validation error shown")


async def confirm_discard(pilot: Pilot) -> None:
    """Esc on a modified editor asks whether to discard the changes."""
    from lf_tui.widgets.dialogs import ConfirmScreen

    app = pilot.app
    await editor_with_error(pilot)
    await pilot.press("escape")
    await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard confirmation")


async def prompt_base_model(pilot: Pilot) -> None:
    """Ctrl+B in the editor: the one-line prompt for the base model, filled with the current one."""
    from lf_tui.widgets.dialogs import PromptScreen

    app = pilot.app
    await editor_defaults(pilot)
    await pilot.press("ctrl+b")
    await _until(pilot, lambda: isinstance(app.screen, PromptScreen), what="base-model prompt")


async def readme(pilot: Pilot) -> None:
    """v on the methods screen: the method's README in a dialog."""
    from textual.widgets import Markdown

    from lf_tui.widgets.dialogs import MarkdownScreen

    app = pilot.app
    await methods(pilot)
    await pilot.press("v")
    await _until(pilot, lambda: isinstance(app.screen, MarkdownScreen) and
                   len(app.screen.query_one(Markdown).children) > 0, what="README shown")


async def help_keys(pilot: Pilot) -> None:
    """? on the methods screen: every key of the screen and the global ones."""
    from lf_tui.screens.help_screen import HelpScreen

    app = pilot.app
    await methods(pilot)
    await pilot.press("question_mark")
    await _until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help screen")


async def runs_list(pilot: Pilot) -> None:
    """F2: the run history, once it lists every run of the store."""
    from textual.widgets import DataTable

    from lf_tui.screens.runs_screen import RunsScreen

    app: Any = pilot.app  # an LfTuiApp
    expected = len(app.store.list())
    await methods(pilot)
    await pilot.press("f2")
    await _until(pilot, lambda: isinstance(app.screen, RunsScreen) and
                   app.screen.query_one("#runs", DataTable).row_count == expected and
                   _text(app, "#runs-title").startswith("Runs in"), what=f"{expected} runs listed")


async def runs_empty(pilot: Pilot) -> None:
    """F2 on an empty store: the hint on how to start a run."""
    await runs_list(pilot)
    await _until(pilot, lambda: "No runs yet" in _text(pilot.app, "#runs-problems"), what="empty-store hint")


async def run_view(pilot: Pilot) -> None:
    """Enter on the newest run (finished): its curves, figures, log and summary."""
    from textual.widgets import RichLog

    from lf_tui.screens.run_screen import RunScreen

    app = pilot.app
    await runs_list(pilot)
    await pilot.press("enter")
    await _until(pilot, lambda: isinstance(app.screen, RunScreen) and "completed" in _text(app, "#summary") and
                   len(app.screen.query_one("#log", RichLog).lines) > 0, what="finished run drawn")


async def comparison(pilot: Pilot) -> None:
    """Mark the first two runs (space, down, space) and compare them (c)."""
    from textual.widgets import DataTable

    from lf_tui.screens.compare_screen import CompareScreen

    app = pilot.app
    await runs_list(pilot)
    await pilot.press("space", "down", "space", "c")
    await _until(pilot, lambda: isinstance(app.screen, CompareScreen) and
                   app.screen.query_one("#compare-summary", DataTable).row_count > 0 and
                   app.screen.query_one("#compare-config", DataTable).row_count > 0, what="comparison loaded")


# settling: a screen is photographed only once nothing on it moves any more ------------------------------------------
async def settle(pilot: Pilot, timeout: float = 15.0) -> None:
    """Stop cursor blinking, drop toasts, then wait until two screenshots 0.3 s apart are identical
    (longer than the run view's 0.25 s redraw tick); timers that redraw the same thing are harmless."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        steady_cursors(app)
        app.clear_notifications()
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        current = app.export_screenshot()
        if current == previous:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the screen never stopped changing")
        previous = current
        await pilot.pause(0.3)


@dataclass(frozen=True)
class Stop:
    """One screen of the tour: how to reach it, whether the store holds the sample runs, its screenshot file."""

    name: str
    reach: Callable[[Pilot], Awaitable[None]]
    with_runs: bool = True
    screenshot: str | None = None  # screenshots/<this>.svg, for the README


TOUR = [
    Stop("methods", methods, screenshot="methods"),
    Stop("editor_defaults", editor_defaults),
    Stop("editor_error", editor_with_error, screenshot="editor"),
    Stop("confirm_discard", confirm_discard),
    Stop("prompt_base_model", prompt_base_model),
    Stop("readme", readme),
    Stop("help", help_keys),
    Stop("runs", runs_list, screenshot="runs"),
    Stop("runs_empty", runs_empty, with_runs=False),
    Stop("run_view", run_view, screenshot="run"),
    Stop("compare", comparison, screenshot="compare"),
]


def reach_and_settle(stop: Stop) -> Callable[[Pilot], Awaitable[None]]:
    """The `run_before` of a snapshot: go to the stop's screen, then wait until it is still."""

    async def run_before(pilot: Pilot) -> None:
        await stop.reach(pilot)
        await settle(pilot)

    return run_before
