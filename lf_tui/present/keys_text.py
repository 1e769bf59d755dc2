"""The keys a screen answers to, read from its BINDINGS (never a list kept by hand): help rows and the footer's fit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.markup import escape
from textual.binding import Binding

HELP_ACTION = "help"
PALETTE_ACTION = "command_palette"


@dataclass(frozen=True)
class KeyRow:
    """One action and every key bound to it ("^r / f5"), as the help screen and the palette list it."""

    keys: str
    description: str
    action: str
    detail: str = ""  # the binding's tooltip: what the short description means


def key_rows(bindings: Iterable[Binding], display: Callable[[Binding], str]) -> list[KeyRow]:
    """One row per action, its keys joined, in declaration order; bindings without a description (Textual's
    internal ones) are left out."""
    keys: dict[str, list[str]] = {}
    first: dict[str, Binding] = {}
    for binding in bindings:
        if not binding.description:
            continue
        shown = display(binding)
        if shown not in keys.setdefault(binding.action, []):
            keys[binding.action].append(shown)
        first.setdefault(binding.action, binding)
    return [KeyRow(" / ".join(keys[action]), first[action].description, action, first[action].tooltip)
            for action in keys]


def footer_width(key: str, description: str) -> int:
    """Columns one key takes in a compact footer: the key, a space, the description, a one-column gap."""
    return cell_len(key) + 1 + cell_len(description) + 1


def footer_fit(entries: Sequence[tuple[str, str]], width: int) -> list[int]:
    """The indices of the (key, description) entries, most important first, that fit in `width` columns: an entry
    too wide for what is left is skipped (a shorter, less important one may still fit)."""
    chosen, left = [], width
    for i, (key, description) in enumerate(entries):
        need = footer_width(key, description)
        if need <= left:
            chosen.append(i)
            left -= need
    return chosen


def help_markup(sections: Sequence[tuple[str, Sequence[KeyRow]]], notes: Sequence[str] = ()) -> str:
    """The help screen's text: a heading per section, one aligned line per key, then the notes."""
    rows = [row for _, section in sections for row in section]
    pad = max((cell_len(row.keys) for row in rows), default=0) + 2
    lines: list[str] = []
    for heading, section in sections:
        if not section:
            continue
        lines.append(f"[b]{escape(heading)}[/b]")
        lines += [f"  [b]{escape(row.keys)}[/b]{' ' * (pad - cell_len(row.keys))}{escape(row.description)}"
                  + (f" [dim]({escape(row.detail)})[/dim]" if row.detail else "") for row in section]
        lines.append("")
    lines += [f"[dim]{escape(note)}[/dim]" for note in notes]
    return "\n".join(lines).rstrip("\n")
