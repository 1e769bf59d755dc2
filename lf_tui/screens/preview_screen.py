"""The editor's data preview: the first examples as training tokenises them, trained tokens highlighted, lengths."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from lf_tui.present.preview_text import preview_renderables
from lf_tui.widgets.fit_footer import FitFooter


class PreviewScreen(ModalScreen[None]):
    """Shows "loading" until the editor's worker hands over the engine's answer (`show`), then the preview."""

    DEFAULT_CSS = """
    PreviewScreen { align: center middle; }
    PreviewScreen #preview-dialog { width: 96%; height: 92%; border: thick $accent; background: $surface; }
    PreviewScreen #preview-title { padding: 0 1; text-style: bold; }
    PreviewScreen #preview-body { padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str):
        super().__init__()
        self.title_text = title
        self.result: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="preview-dialog"):
            yield Label(self.title_text, id="preview-title")
            with VerticalScroll(id="preview-scroll"):
                yield Static("loading the tokenizer and tokenising the dataset…", id="preview-body")
            yield FitFooter()

    def show(self, result: dict[str, Any]) -> None:
        """The engine's preview, or its error with the fix."""
        if not self.is_attached:
            return
        self.result = result
        body = self.query_one("#preview-body", Static)
        if "error" in result:
            from lf_tui.cli.preview_data import error_text

            body.update(Group(Text.from_markup(error_text(result)),
                              Text("\nfix the config or the dataset, then press F8 again", style="dim")))
        else:
            body.update(Group(*preview_renderables(result)))

    def action_close(self) -> None:
        self.dismiss(None)
