"""`?`: every key of the screen below and the app's global ones, read from their BINDINGS; Esc, `?` or q closes."""

from __future__ import annotations

from collections.abc import Sequence

from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from lf_tui.present.keys_text import KeyRow, help_markup, key_rows

EVERYWHERE_NOTES = (
    "? works outside a text field (Tab or Esc leaves one); Ctrl+P (the command palette) finds every command by name.",
)


def offered(node: DOMNode, binding: Binding) -> bool:
    """Whether `binding` does something now: its node's check_action does not hide it (an ended run's Cancel)."""
    namespace, name, parameters = parse(binding.action)
    target = node.app if namespace == "app" else node
    return target.check_action(name, parameters) is not False


def screen_sections(screen: Screen[object]) -> list[tuple[str, list[KeyRow]]]:
    """(heading, rows) for `screen`'s own keys, then the app's (global) ones: from the live bindings maps, only
    those the screen (or the app) offers now."""
    app = screen.app
    textual_own = {(key, b.action, b.description) for key, b in BindingsMap(Screen.BINDINGS)}  # Tab, copy: anywhere
    ours = [b for key, b in screen._bindings if (key, b.action, b.description) not in textual_own
            and offered(screen, b)]
    declared = [key for key, _ in BindingsMap(getattr(type(screen), "BINDINGS", []))]  # the class's own order
    ours.sort(key=lambda b: declared.index(b.key) if b.key in declared else len(declared))
    own = key_rows(ours, app.get_key_display)
    everywhere = key_rows([b for _, b in app._bindings if offered(app, b)]
                          + [b for key, b in screen._bindings if (key, b.action, b.description) in textual_own
                             and offered(screen, b)], app.get_key_display)
    known = {row.action for row in own}
    title = getattr(screen, "KEYS_TITLE", "") or type(screen).__name__.removesuffix("Screen")
    return [(f"This screen ({title})", own), ("Everywhere", [r for r in everywhere if r.action not in known])]


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened over."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-dialog { width: 76; max-width: 100%; height: auto; max-height: 100%;
                              border: thick $accent; background: $surface; }
    HelpScreen #help-title { padding: 0 1; text-style: bold; }
    HelpScreen #help-scroll { height: auto; max-height: 100%; }
    HelpScreen #help-body { padding: 0 1; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[KeyRow]]], notes: Sequence[str] = ()) -> None:
        super().__init__()
        self.sections, self.notes = sections, notes

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Label("Keys · Esc closes", id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_markup(self.sections, self.notes), id="help-body")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()  # ↑/↓ scroll a short terminal

    def action_close(self) -> None:
        self.dismiss(None)
