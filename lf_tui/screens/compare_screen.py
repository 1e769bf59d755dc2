"""Comparison of marked runs: overlaid loss curves, config differences, summary figures side by side."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label

from engine.run_store import RunDir
from lf_tui import run_text
from lf_tui.config_diff import config_differences
from lf_tui.run_history import load_run
from lf_tui.widgets.plots import CurvePlot


class CompareScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, runs: list[RunDir]):
        super().__init__()
        self.records = [load_run(r) for r in runs]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"Comparing {len(self.records)} runs", classes="title")
        yield CurvePlot("training loss", id="compare-plot")
        yield Label("Summary", classes="title")
        yield DataTable(id="compare-summary", cursor_type="none")
        yield Label("Config differences (only keys that differ)", classes="title")
        yield DataTable(id="compare-config", cursor_type="none")
        yield Footer()

    def on_mount(self) -> None:
        names = [r.run.run_id for r in self.records]
        self.query_one("#compare-plot", CurvePlot).set_series([(r.run.run_id, r.model.loss) for r in self.records])
        summary = self.query_one("#compare-summary", DataTable)
        summary.add_column("")
        for name in names:
            summary.add_column(name)
        columns = [dict(run_text.summary_rows(r.summary or {})) for r in self.records]
        for label, _ in run_text.summary_rows({}):
            summary.add_row(label, *[column.get(label, "—") for column in columns])
        diff = self.query_one("#compare-config", DataTable)
        diff.add_column("key")
        for name in names:
            diff.add_column(name)
        rows = config_differences([r.config for r in self.records])
        for key, values in rows:
            diff.add_row(key, *[str(v) for v in values])
        if not rows:
            diff.add_row("(identical configs)", *["" for _ in names])
