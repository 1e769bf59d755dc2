"""A RichLog that re-wraps the lines it holds when its width changes (RichLog keeps them as first wrapped)."""

from __future__ import annotations

from collections import deque

from rich.console import RenderableType
from textual.events import Resize
from textual.widgets import RichLog
from typing_extensions import Self


class ReflowLog(RichLog):
    """Remembers what was written (up to `max_lines` entries) and writes it again, wrapped at the new width, after
    a resize; scrolled to the end it stays at the end."""

    def __init__(self, *, max_lines: int = 500, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=max_lines, min_width=1, wrap=True, markup=False, id=id, classes=classes)
        self._written: deque[RenderableType] = deque(maxlen=max_lines)
        self._wrapped_at = 0  # the width the lines now shown were wrapped at

    def write(self, content: RenderableType | object, width: int | None = None, expand: bool = False,
              shrink: bool = True, scroll_end: bool | None = None, animate: bool = False) -> Self:
        # before its size is known, RichLog defers the write and makes it again (through here) once sized;
        # the content is a str or a Rich renderable
        if self._size_known:
            self._written.append(content)  # type: ignore[arg-type]
        return super().write(content, width, expand, shrink, scroll_end, animate)

    def clear(self) -> Self:
        self._written.clear()
        return super().clear()

    def on_resize(self, event: Resize) -> None:
        width = event.size.width
        if not self._wrapped_at or not width:
            self._wrapped_at = width  # the first size: RichLog renders what it deferred at this width
            return
        if width != self._wrapped_at:
            self._wrapped_at = width
            self.reflow()

    def reflow(self) -> None:
        """Write every remembered entry again at the current width."""
        at_end = self.is_vertical_scroll_end or not self.lines
        kept = list(self._written)
        RichLog.clear(self)
        for content in kept:
            super().write(content, scroll_end=False)
        if at_end:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
