"""Screen 1: the method selection matrix and use-case recommendations, read from the catalogue."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from methods.catalogue import get_catalogue

TICK = {True: "✔ yes", False: "✘ no"}
READY = {"yes": "✔ yes", "partial": "◐ partial", "no": "✘ no"}


class MethodsScreen(Screen[None]):
    """Pick a method: Enter opens its defaults in the editor; b/a/p open an example; v shows its README."""

    BINDINGS = [
        Binding("enter", "open('defaults')", "Defaults", priority=True),
        Binding("b", "open('basic')", "Basic example"),
        Binding("a", "open('advanced')", "Advanced"),
        Binding("p", "open('production')", "Production"),
        Binding("v", "readme", "README"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Quick selection matrix — pick a method (↑/↓), Enter opens its defaults in the editor",
                    classes="title")
        yield DataTable(id="matrix", cursor_type="row", zebra_stripes=True)
        yield Label("Use case recommendations", classes="title")
        yield DataTable(id="usecases", cursor_type="none", zebra_stripes=True)
        yield Static(id="method-summary")
        yield Footer()

    def on_mount(self) -> None:
        catalogue = get_catalogue()
        matrix = self.query_one("#matrix", DataTable)
        matrix.add_columns("Method", "GPU Memory (7B)", "Training Speed", "Quality vs Full FT", "Multiple Tasks",
                           "Hot Swapping", "Production Ready")
        for method in catalogue:
            row = method.info.matrix
            matrix.add_row(method.info.title, row.gpu_memory_7b, row.training_speed, row.quality_vs_full,
                           TICK[row.multiple_tasks], TICK[row.hot_swapping], READY[row.production_ready],
                           key=method.name)
        usecases = self.query_one("#usecases", DataTable)
        usecases.add_columns("Use Case", "Primary Method", "Secondary Option", "Configuration Notes")
        for row in catalogue.use_case_table():
            usecases.add_row(*row)
        matrix.focus()
        self._show_summary()

    @property
    def selected(self) -> str:
        matrix = self.query_one("#matrix", DataTable)
        return str(matrix.coordinate_to_cell_key(matrix.cursor_coordinate).row_key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_summary()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open("defaults")

    def _show_summary(self) -> None:
        method = get_catalogue().get(self.selected)
        lo, hi = method.info.lr_range
        self.query_one("#method-summary", Static).update(
            f"[b]{method.info.title}[/b]: {method.info.summary}\nusual learning rate {lo:g}–{hi:g} · "
            f"[dim]Enter defaults · b/a/p basic/advanced/production example · v README[/dim]")

    def action_open(self, which: str) -> None:
        method = get_catalogue().get(self.selected)
        path = method.defaults_path if which == "defaults" else method.example_path(which)
        self.app.open_editor(method.name, template=path)  # type: ignore[attr-defined]

    def action_readme(self) -> None:
        from lf_tui.widgets.dialogs import MarkdownScreen

        method = get_catalogue().get(self.selected)
        self.app.push_screen(MarkdownScreen(method.readme_path.read_text(encoding="utf-8")))
