"""Screen 1: the method selection matrix and use-case recommendations, read from the catalogue."""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, Static

from lf_tui.messages import OpenEditor
from lf_tui.present.memory_text import matrix_caption
from lf_tui.present.methods_table import (
    REFERENCE_LABEL,
    REFERENCE_MODEL,
    USE_CASE_HEADERS,
    matrix_headers,
    matrix_rows,
    method_blurb,
    use_case_rows,
)
from lf_tui.widgets.fit_footer import FitFooter
from methods.catalogue import Method, get_catalogue


class MethodsScreen(Screen[None]):
    """Pick a method: Enter opens its defaults in the editor; b/a/p open an example; v shows its README."""

    BINDINGS = [
        Binding("enter", "open('defaults')", "Defaults", priority=True),
        Binding("b", "open('basic')", "Basic"),
        Binding("a", "open('advanced')", "Advanced"),
        Binding("p", "open('production')", "Prod."),
        Binding("v", "readme", "README"),
        Binding("m", "pick_model", "Memory"),
    ]
    base_model = REFERENCE_MODEL
    caption = ""  # what the memory row assumes (the CLI's caption too)

    @property
    def KEYS_NOTE(self) -> str:  # the help screen reads each screen's KEYS_NOTE
        return self.caption

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Quick selection matrix: pick a method (↑/↓), Enter edits its defaults", classes="title")
        yield DataTable(id="matrix", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        yield Label("Use case recommendations", classes="title")
        yield DataTable(id="usecases", cursor_type="none", zebra_stripes=True)
        yield Static(id="method-summary")
        yield FitFooter()

    @property
    def matrix(self) -> DataTable[str]:
        return self.query_one("#matrix", DataTable)

    def on_mount(self) -> None:
        self._fill(REFERENCE_LABEL, matrix_rows())
        self.set_class(self.size.height < 32, "short")
        usecases: DataTable[str] = self.query_one("#usecases", DataTable)
        usecases.add_columns(*USE_CASE_HEADERS)
        for row in use_case_rows():
            usecases.add_row(*row)
        self.matrix.focus()
        self._show_summary()

    def on_resize(self) -> None:
        self.set_class(self.size.height < 32, "short")  # 24 rows over SSH: no header, the use cases scroll

    def _fill(self, label: str, rows: list[tuple[str, list[str]]]) -> None:
        matrix = self.matrix
        row = matrix.cursor_row
        matrix.scroll_home(animate=False)  # new columns size from the left edge, the Method column whole
        matrix.clear(columns=True)
        matrix.add_columns(*matrix_headers(label))
        self.caption = matrix_caption(label)
        for name, cells in rows:
            matrix.add_row(*cells, key=name)
        matrix.move_cursor(row=min(row, len(rows) - 1))

    def action_pick_model(self) -> None:
        from lf_tui.widgets.dialogs import PromptScreen

        current = "" if self.base_model == REFERENCE_MODEL else self.base_model
        self.app.push_screen(PromptScreen("Plan memory for (hub id, folder; empty: Llama-2-7B):", current),
                             self._set_model)

    def _set_model(self, value: str | None) -> None:
        if value is None:
            return
        self.base_model = value.strip() or REFERENCE_MODEL
        self.notify(f"planning every method on {value.strip() or REFERENCE_LABEL}…")
        self._replan(self.base_model)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _replan(self, base_model: str) -> None:
        """The planner per method (a hub model's config.json may need fetching): off the UI thread."""
        from engine.planning import PlanError, model_shape

        label = REFERENCE_LABEL if base_model == REFERENCE_MODEL else base_model.rstrip("/").rsplit("/", 1)[-1]
        try:
            known = model_shape(base_model)
        except PlanError as exc:
            self.base_model = REFERENCE_MODEL  # the column still shows the reference: so does the next prompt
            self.app.call_from_thread(self.notify, f"{exc.message}: {exc.hint}", severity="error", timeout=10)
            return
        rows = matrix_rows(base_model, known)
        self.app.call_from_thread(self._fill, label, rows)

    @property
    def selected(self) -> Method:
        """The method under the cursor."""
        key = self.matrix.coordinate_to_cell_key(self.matrix.cursor_coordinate).row_key.value
        return get_catalogue().get(str(key))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_summary()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open("defaults")

    def _show_summary(self) -> None:
        title, blurb = method_blurb(self.selected)
        self.query_one("#method-summary", Static).update(
            f"[b]{title}[/b]: {blurb} · [dim]Enter defaults · b/a/p basic/advanced/production example · v README[/dim]"
            f"\n[dim]{escape(self.caption)}[/dim]")

    def action_open(self, which: str) -> None:
        method = self.selected
        path = method.defaults_path if which == "defaults" else method.example_path(which)
        self.post_message(OpenEditor(method.name, path))

    def action_readme(self) -> None:
        from lf_tui.widgets.dialogs import MarkdownScreen

        path = self.selected.readme_path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.notify(f"{path}: cannot read it ({exc})", severity="error")
            return
        self.app.push_screen(MarkdownScreen(text))
