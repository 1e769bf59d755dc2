"""The keys text without a terminal: help rows from BINDINGS, what fits a footer, the What fits count."""

from __future__ import annotations

from textual.binding import Binding, BindingsMap

from lf_tui.present.keys_text import footer_fit, footer_width, help_markup, key_rows
from lf_tui.present.recommend_text import shown_line


def test_key_rows_join_every_key_of_an_action_and_skip_undescribed() -> None:
    bindings = [b for _, b in BindingsMap([Binding("ctrl+r,f5", "start", "Start run"), Binding("ctrl+c", "x"),
                                           Binding("escape", "leave", "Back", show=False)])]
    rows = key_rows(bindings, lambda b: b.key)
    assert [(r.keys, r.description) for r in rows] == [("ctrl+r / f5", "Start run"), ("escape", "Back")]
    text = help_markup([("This screen", rows)], ["a note"])
    assert "ctrl+r / f5" in text and "Back" in text and text.endswith("a note[/dim]")


def test_footer_fit_keeps_the_most_important_that_fit_and_fills_the_rest() -> None:
    entries = [("?", "Keys"), ("^r", "Start run"), ("^b", "Base model"), ("f2", "Runs")]
    assert footer_width("?", "Keys") == 7
    assert footer_fit(entries, 80) == [0, 1, 2, 3]
    # 7 + 13 = 20 columns taken; "^b Base model" (14) does not fit in 28, the shorter "f2 Runs" (8) does
    assert footer_fit(entries, 28) == [0, 1, 3]
    assert footer_fit(entries, 6) == []


def test_shown_line_says_how_many_of_how_many() -> None:
    assert shown_line(10, 22) == "10 of 22 shown"
    assert shown_line(22, 22) == "all 22 shown"
    assert shown_line(0, 0) == "none fit"
