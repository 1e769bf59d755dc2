"""How many of the fitting candidates a list shows, in the words the What fits screen and `lf-tui recommend` use."""

from __future__ import annotations


def shown_line(shown: int, total: int) -> str:
    """`10 of 22 shown` when a list is cut (`--top`), `all 22 shown` when it is not, `none fit` for an empty one."""
    if total == 0:
        return "none fit"
    if shown >= total:
        return f"all {total} shown" if total > 1 else "the only one shown"
    return f"{shown} of {total} shown"
