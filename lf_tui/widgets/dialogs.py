"""Modal dialogs: yes/no confirmation, a one-line prompt, and a Markdown viewer (each carries its own CSS)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, MarkdownViewer


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True for yes (y), False for no (n, Esc, Enter: the safe answer has the
    focus). 70 columns wide, narrower on a narrower terminal."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen .dialog { width: 70; max-width: 100%; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    ConfirmScreen .dialog .buttons { height: auto; margin-top: 1; }
    ConfirmScreen #question { width: 100%; }
    ConfirmScreen .dialog Button { margin-right: 2; }
    """
    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n,escape", "no", "No")]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No"):
        super().__init__()
        self.question, self.yes_label, self.no_label = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes_label} (y)", variant="error", id="yes")
                yield Button(f"{self.no_label} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # Enter keeps what there is: only y (or a click) says yes

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a path, a model id); None when cancelled."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen .dialog { width: 70; max-width: 100%; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = ""):
        super().__init__()
        self.question, self.value, self.placeholder = question, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MarkdownScreen(ModalScreen[None]):
    """Show a Markdown document (a method's README)."""

    DEFAULT_CSS = """
    MarkdownScreen { align: center middle; }
    MarkdownScreen .markdown-dialog { width: 90%; height: 90%; border: thick $accent; background: $surface; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, markdown: str):
        super().__init__()
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        with Vertical(classes="markdown-dialog"):
            yield MarkdownViewer(self.markdown, show_table_of_contents=False)

    def action_close(self) -> None:
        self.dismiss(None)
