"""`lf-tui generate`'s table: the generated text as printable characters (never raw control bytes), markup kept as
text; --json keeps the text as generated."""

from __future__ import annotations

import io

from rich.console import Console

from lf_tui.cli.generate import _print_table, visible


def test_control_characters_are_escaped_in_the_table() -> None:
    text = "ab\x08\x11c [bold]x[/bold]\x1b[31m\nnext\tline"
    assert visible(text) == "ab\\x08\\x11c [bold]x[/bold]\\x1b[31m\nnext\tline"
    buffer = io.StringIO()
    _print_table(Console(file=buffer, width=200, color_system=None), "say \x07hi",
                 [{"target": "run-1", "text": text, "first_token_s": 0.01, "tokens_per_s": 50.0}])
    shown = buffer.getvalue()
    assert not any(c in shown for c in "\x08\x11\x1b\x07")
    assert "ab\\x08\\x11c [bold]x[/bold]\\x1b[31m" in shown and "say \\x07hi" in shown
