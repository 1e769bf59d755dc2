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
