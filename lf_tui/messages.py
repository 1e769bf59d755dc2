"""What screens ask the app to do, one message class per request; the app handles each with `@on`."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from engine.run_store import RunDir
from methods.config_models import MethodConfigBase


class OpenEditor(Message):
    """Open a method's config text (its defaults or an example, or `text` when given) in a new editor."""

    def __init__(self, method: str, template: Path, text: str | None = None,
                 plan_for: tuple[str, int, str] | None = None) -> None:
        super().__init__()
        self.method, self.template, self.text, self.plan_for = method, template, text, plan_for


class StartRequested(Message):
    """Start training a validated config; relative paths in it resolve against `config_path`'s folder."""

    def __init__(self, config: MethodConfigBase, dataset: str | None, config_path: Path | None) -> None:
        super().__init__()
        self.config, self.dataset, self.config_path = config, dataset, config_path


class OpenRun(Message):
    """Show a run in the run view (live when it is running, replayed when it has ended)."""

    def __init__(self, run: RunDir) -> None:
        super().__init__()
        self.run = run


class ResumeRequested(Message):
    """Continue a cancelled or crashed run from its last checkpoint and watch it."""

    def __init__(self, run: RunDir) -> None:
        super().__init__()
        self.run = run


class OpenPlayground(Message):
    """Show the Playground (the one already open, if any), with these runs chosen when given."""

    def __init__(self, run_ids: list[str] | None = None) -> None:
        super().__init__()
        self.run_ids = run_ids
