"""A compact footer that shows only the keys that fit its width, most important first, `?` (every key) always."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from lf_tui.present.keys_text import HELP_ACTION, PALETTE_ACTION, footer_fit

PALETTE_EXTRA = 1  # the palette key's left border


class FitFooter(Footer):
    """Textual's footer, cut to the width by importance instead of by the terminal's edge: the help key, the
    command palette, the screen's keys in their BINDINGS order, the focused widget's, then the app's."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._composed_width = 0

    def _width(self) -> int:
        return self.size.width or self.screen.size.width or self.app.size.width

    def _rank(self, namespace: DOMNode, binding: Binding) -> tuple[int, int]:
        if binding.action in (HELP_ACTION, f"app.{HELP_ACTION}"):
            return 0, 0
        if binding.action in (PALETTE_ACTION, f"app.{PALETTE_ACTION}"):
            return 1, 0
        group = 2 if namespace is self.screen else 4 if namespace is self.app else 3
        order = [key for key, _ in BindingsMap(getattr(type(namespace), "BINDINGS", []))]  # as the class declares
        return group, order.index(binding.key) if binding.key in order else len(order)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self._composed_width = self._width()
        palette_on = self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE
        seen: dict[str, tuple[tuple[int, int], Binding, bool, str]] = {}
        for namespace, binding, enabled, tooltip in self.screen.active_bindings.values():
            is_palette = binding.action in (PALETTE_ACTION, f"app.{PALETTE_ACTION}")
            if (not binding.show and not is_palette) or (is_palette and not palette_on):
                continue
            if binding.action not in seen:
                seen[binding.action] = (self._rank(namespace, binding), binding, enabled, tooltip)
        if HELP_ACTION not in seen:  # a text field has the focus and takes `?` as a character: shown dimmed
            help_binding = next((b for _, b in self.app._bindings if b.action == HELP_ACTION), None)
            if help_binding is not None:
                seen[HELP_ACTION] = ((0, 0), help_binding, False, "outside a text field (Tab leaves it)")
        ranked = sorted(seen.values(), key=lambda item: item[0])
        labels = [(self.app.get_key_display(b), b.description) for _, b, _, _ in ranked]
        extra = [PALETTE_EXTRA if rank[0] == 1 else 0 for rank, *_ in ranked]
        fits = footer_fit([(key, desc + " " * pad) for (key, desc), pad in zip(labels, extra)], width)
        # the screen's keys in importance order, then `?`, then the palette docked at the right edge
        order = sorted(fits, key=lambda i: (ranked[i][0][0] in (0, 1), ranked[i][0][0], ranked[i][0]))
        for i in order:
            rank, binding, enabled, tooltip = ranked[i]
            key, description = labels[i]
            yield FooterKey(binding.key, key, description, binding.action, disabled=not enabled,
                            tooltip=tooltip or binding.tooltip or binding.description,
                            classes="-command-palette" if rank[0] == 1 else "").data_bind(compact=Footer.compact)

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._composed_width:
            self.call_after_refresh(self.recompose)
