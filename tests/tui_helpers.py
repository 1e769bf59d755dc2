"""Helpers for Pilot-driven tests: wait by polling a condition (never a bare sleep), read the screen."""

from __future__ import annotations

import time
from typing import Callable

from textual.pilot import Pilot


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


def issues_text(app) -> str:
    from textual.widgets import OptionList

    options = app.screen.query_one("#issues", OptionList)
    return "\n".join(str(options.get_option_at_index(i).prompt) for i in range(options.option_count))


async def open_defaults_editor(pilot: Pilot, app) -> None:
    """As a user: from the methods screen, Enter opens the first method's defaults in the editor."""
    from lf_tui.screens.editor_screen import EditorScreen
    from lf_tui.screens.methods_screen import MethodsScreen

    await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))


async def start_from_editor(pilot: Pilot, app, sections: dict, dataset: str) -> None:
    """As a user: Enter on the first method, edit its defaults (`sections` merged per section), pick the
    dataset, Ctrl+R; returns once the run view is up."""
    import json

    from textual.widgets import Input, TextArea

    from lf_tui.screens.run_screen import RunScreen

    await open_defaults_editor(pilot, app)
    area = app.screen.query_one("#config", TextArea)
    doc = json.loads(area.text)
    for section, values in sections.items():
        doc["method_config"][section].update(values)
    area.load_text(json.dumps(doc, indent=2))
    app.screen.query_one("#dataset", Input).value = dataset
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="run view")
