"""Screen 4: the run history: sortable, filterable, mark runs to compare, open, delete (confirmed)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Label

from engine.run_store import RunDir, RunInfo, RunRefused, RunStore
from lf_tui.messages import OpenPlayground, OpenRun, ResumeRequested
from lf_tui.present.formatting import shown_path
from lf_tui.present.runs_table import (
    COLUMNS,
    COMPACT_BELOW,
    REASON,
    SORT_KEYS,
    columns_for,
    matches,
    problem_lines,
    row,
    sort_runs,
)
from lf_tui.widgets.dialogs import ConfirmScreen
from lf_tui.widgets.fit_footer import FitFooter


class RunsScreen(Screen[None]):
    """Every run in the store; refreshes itself so runs started elsewhere appear."""

    BINDINGS = [  # most important first: a narrow footer keeps the first that fit (`?` lists them all)
        Binding("enter", "open_run", "Open", priority=True),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare", tooltip="the marked runs the filter shows"),
        Binding("r", "resume", "Resume", tooltip="a cancelled or crashed run, from its last checkpoint"),
        Binding("d", "delete", "Delete"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Reverse", tooltip="the sort order; again: back"),
        Binding("o", "sort_by", "Sort by", tooltip="the next column (a header click: that column)"),
        Binding("g", "playground", "Playground", tooltip="ask the marked runs shown, or this one, a prompt"),
        Binding("escape", "back", "Back"),
        Binding("f5", "refresh", "Refresh"),
    ]
    KEYS_NOTE = ("c compares the marked runs the filter shows; a header click sorts by that column (again: reversed).")

    def __init__(self, store: RunStore, refresh_s: float = 2.0):
        super().__init__()
        self.store = store
        self.refresh_s = refresh_s
        self.runs: list[RunInfo] = []
        self.marked: set[str] = set()
        self.sort_index, self.descending = SORT_KEYS.index("started"), True
        self.shown_keys: list[str] = SORT_KEYS
        self.shown_ids: list[str] = []  # the runs the filter lets through, in table order

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(id="runs-title", classes="title")
        yield Input(placeholder="filter: words matching id, method, model or status", id="filter")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Label(id="runs-problems")
        yield FitFooter()

    # typed accessors ----------------------------------------------------------
    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#runs", DataTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#filter", Input)

    def _set_columns(self) -> None:
        """(Re)build the table's columns for the terminal's width (compact in a narrow one, as `lf-tui runs`)."""
        keys, labels = columns_for(self.size.width)
        if self.size.width >= COMPACT_BELOW:  # why each run ended, last (the table scrolls sideways for the rest)
            keys = [*keys, REASON]
        self.shown_keys = keys
        table = self.table
        table.clear(columns=True)
        table.add_column("✓", key="mark")
        for key in keys:
            table.add_column(labels[key], key=key)

    def on_resize(self) -> None:
        if columns_for(self.size.width)[0] != [k for k in self.shown_keys if k != REASON]:
            self._set_columns()
            self._show(self.runs)

    def on_mount(self) -> None:
        table = self.table
        self._set_columns()
        self.action_refresh()
        self.set_interval(self.refresh_s, self.action_refresh)
        table.focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-scan")
    def action_refresh(self) -> None:
        runs = self.store.list()  # disk I/O off the event loop
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: list[RunInfo]) -> None:
        self.runs = runs
        table = self.table
        cursor_key = self.current_id
        table.clear()
        text = self.filter_input.value
        shown = sort_runs([r for r in runs if matches(r, text)], SORT_KEYS[self.sort_index], self.descending)
        self.shown_ids = [r.run_id for r in shown]
        for info in shown:
            table.add_row("✓" if info.run_id in self.marked else "", *row(info, self.shown_keys), key=info.run_id)
        if cursor_key is not None and cursor_key in {r.run_id for r in shown}:
            table.move_cursor(row=table.get_row_index(cursor_key))
        arrow = "↓" if self.descending else "↑"
        hidden = len(self.marked - set(self.shown_ids))
        self.query_one("#runs-title", Label).update(
            f"Runs in {shown_path(self.store.root)} · {len(shown)}/{len(runs)} shown · sorted by {COLUMNS[self.sort_index][1]} "
            f"{arrow} · {len(self.marked)} marked (space)" + (f", {hidden} hidden by the filter" if hidden else "")
            + ", c compares")
        lines = problem_lines(runs, limit=3)
        if not runs:
            lines = [f"No runs yet in {shown_path(self.store.root)}. Start one: F1 → pick a method → Enter → Ctrl+R, "
                     "or `lf-tui quick-train -m lora` in a shell."]
        self.query_one("#runs-problems", Label).update("\n".join(lines))

    @property
    def current(self) -> RunInfo | None:
        """The run under the cursor."""
        run_id = self.current_id
        return next((r for r in self.runs if r.run_id == run_id), None)

    @property
    def current_id(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show(self.runs)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORT_KEYS:
            index = SORT_KEYS.index(key)
            self.descending = not self.descending if index == self.sort_index else True
            self.sort_index = index
            self._show(self.runs)

    def action_sort(self) -> None:
        """Reverse the order (a second press restores it)."""
        self.descending = not self.descending
        self._show(self.runs)

    def action_sort_by(self) -> None:
        """Sort by the next column, newest / largest first."""
        self.sort_index, self.descending = (self.sort_index + 1) % len(SORT_KEYS), True
        self._show(self.runs)

    def marked_shown(self) -> list[RunInfo]:
        """The marked runs the filter shows, in table order (a hidden mark is never acted on)."""
        by_id = {r.run_id: r for r in self.runs}
        return [by_id[i] for i in self.shown_ids if i in self.marked and i in by_id]

    def action_filter(self) -> None:
        self.filter_input.focus()

    def action_mark(self) -> None:
        run_id = self.current_id
        if run_id is None:
            return
        self.marked.symmetric_difference_update({run_id})
        self._show(self.runs)

    def action_compare(self) -> None:
        from lf_tui.screens.compare_screen import CompareScreen

        chosen = self.marked_shown()
        hidden = len(self.marked) - len(chosen)
        if len(chosen) < 2:
            self.notify("mark two or more runs with space to compare them" +
                        (f" ({hidden} marked run(s) hidden by the filter are left out)" if hidden else ""),
                        severity="warning")
            return
        if hidden:
            self.notify(f"comparing the {len(chosen)} marked runs shown; {hidden} hidden by the filter left out")
        self.app.push_screen(CompareScreen([RunDir(r.path) for r in chosen]))

    def action_playground(self) -> None:
        """Ask the marked runs (or the one under the cursor) a prompt, side by side with their base."""
        chosen = [r.run_id for r in self.marked_shown()]
        if not chosen and self.current is not None:
            chosen = [self.current.run_id]
        self.post_message(OpenPlayground(chosen))

    def action_open_run(self) -> None:
        if isinstance(self.focused, Input):
            self.table.focus()
            return
        info = self.current
        if info is not None:
            self.post_message(OpenRun(RunDir(info.path)))

    def action_resume(self) -> None:
        """Continue a cancelled or crashed run from its last checkpoint and watch it (all its segments)."""
        info = self.current
        if info is not None:
            self.post_message(ResumeRequested(RunDir(info.path)))

    def action_delete(self) -> None:
        info = self.current
        if info is None:
            return
        run = RunDir(info.path)
        refusal = run.delete_refusal()
        if refusal:
            self.notify(refusal, severity="warning")
            return

        def decided(yes: bool | None) -> None:
            if yes:
                try:
                    run.delete()
                except (RunRefused, OSError) as exc:  # its engine started meanwhile, or the disk said no
                    self.notify(f"cannot delete {run.run_id}: {exc}", severity="warning")
                    return
                self.marked.discard(run.run_id)
                self.notify(f"deleted {run.run_id}")
                self.action_refresh()

        self.app.push_screen(ConfirmScreen(f"Delete run {run.run_id} and all its files?", "Delete", "Keep"), decided)

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.table.focus()
        else:
            self.app.pop_screen()
