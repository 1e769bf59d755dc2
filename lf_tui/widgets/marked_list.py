"""A SelectionList whose chosen entries carry a ✓ (not only a colour): readable in any theme, or without colour."""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import SelectionList
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.option_list import OptionDoesNotExist

CHOSEN, NOT_CHOSEN = "✓", " "


class MarkedSelectionList(SelectionList[str]):
    """Textual's SelectionList with ✓ in the box of a chosen entry and a blank box otherwise."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        if len(segments) < 3 or segments[1].text != ToggleButton.BUTTON_INNER:
            return strip  # a line without a box (past the last entry)
        try:
            value = self.get_option_at_index(self.scroll_offset.y + y).value
        except OptionDoesNotExist:
            return strip
        segments[1] = Segment(CHOSEN if value in self.selected else NOT_CHOSEN, segments[1].style)
        return Strip(segments, strip.cell_length)
