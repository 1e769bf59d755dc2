"""Comparison of marked runs: overlaid loss curves, config differences, summary and deployment figures side by side."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label
from textual.worker import Worker, get_current_worker

from engine.benchmark_report import report
from engine.run_store import RunDir
from lf_tui.present import ending, run_text
from lf_tui.present.config_diff import config_differences
from lf_tui.present.report_text import compared
from lf_tui.run_replay import ReplayedRun, replay_run
from lf_tui.widgets.fit_footer import FitFooter
from lf_tui.widgets.plots import CurvePlot

COMPARED_REASON = 60  # a reason cell's width at most (the run view has the whole error)


class CompareScreen(Screen[None]):
    """The runs are replayed from disk in a worker thread; the tables fill in when they are read."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("tab", "app.focus_next", "Next table", show=False)]

    def __init__(self, runs: list[RunDir]):
        super().__init__()
        self.runs = runs
        self.records: list[ReplayedRun] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"Comparing {len(self.runs)} runs (reading…)", id="compare-title", classes="title")
        with VerticalScroll(id="compare-body"):  # a short terminal scrolls to the summary and the differences
            yield CurvePlot("training loss", id="compare-plot")
            yield Label("Summary", classes="title")
            yield DataTable(id="compare-summary", cursor_type="none", fixed_columns=1)
            yield Label("Benchmarks (each config's thresholds: lf-tui report RUN)", classes="title")
            yield DataTable(id="compare-bench", cursor_type="none", fixed_columns=1)
            yield Label("Config differences (only keys that differ)", classes="title")
            yield DataTable(id="compare-config", cursor_type="none", fixed_columns=1)
        yield FitFooter()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-load")
    def load(self) -> None:
        records = [replay_run(r) for r in self.runs]  # disk reads off the event loop
        reports = [report(r) for r in self.runs]
        if not get_current_worker().is_cancelled:  # the screen was left meanwhile
            self.app.call_from_thread(self.show, records, reports)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.error is not None:
            self.query_one("#compare-title", Label).update(f"Comparing {len(self.runs)} runs: cannot read them")
            self.notify(f"cannot read the runs: {event.worker.error}", severity="error", timeout=10)

    def show(self, records: list[ReplayedRun], reports: list[dict[str, Any]] | None = None) -> None:
        if not self.is_attached:
            return
        self.records = records
        self.query_one("#compare-title", Label).update(f"Comparing {len(records)} runs (←/→ scroll a table, Tab the next)")
        names = [r.run.run_id for r in records]
        self.query_one("#compare-plot", CurvePlot).set_series([(r.run.run_id, r.state.loss) for r in records])
        summary: DataTable[str] = self.query_one("#compare-summary", DataTable)
        summary.focus()  # ←/→ scroll it when the runs do not fit
        summary.add_column("")
        for name in names:
            summary.add_column(name)
        columns = [dict(run_text.summary_rows(r.summary or {"status": r.status})) for r in records]
        for label in run_text.compared_labels([r.summary or {} for r in records]):
            summary.add_row(label, *[column.get(label, "—") for column in columns])
            if label == "status" and any(r.status != "completed" for r in records):  # why each one ended
                summary.add_row("reason", *[ending.reason(r.status, r.failure, COMPARED_REASON) for r in records])
        bench: DataTable[str] = self.query_one("#compare-bench", DataTable)
        bench.add_column("")
        for name in names:
            bench.add_column(name)
        for bench_row in compared(reports or [report(r.run) for r in records]):
            bench.add_row(*bench_row)
        diff: DataTable[str] = self.query_one("#compare-config", DataTable)
        diff.add_column("key")
        for name in names:
            diff.add_column(name)
        rows = config_differences([r.config for r in records])
        for key, values in rows:
            diff.add_row(key, *[str(v) for v in values])
        if not rows:
            diff.add_row("(identical configs)", *["" for _ in names])
