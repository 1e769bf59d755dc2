"""The selection matrix made live: pick a model and a GPU size, see what fits and why, Enter opens one in the editor."""

from __future__ import annotations

import json
import os
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Label, Select, Static

from lf_tui.messages import OpenEditor
from lf_tui.present.memory_text import RECOMMEND_HEADERS, recommend_rows
from lf_tui.present.memory_text import budget_text as budget_text_of
from lf_tui.present.recommend_text import shown_line
from lf_tui.widgets.fit_footer import FitFooter

GOALS = [("best quality", "quality"), ("fastest", "speed"), ("least memory", "memory")]


class RecommendScreen(Screen[None]):
    """Model, GPU memory and goal at the top; every fitting method and setting below, best first."""

    DEFAULT_CSS = """
    RecommendScreen #recommend-inputs { height: auto; }
    RecommendScreen #recommend-inputs Input { width: 1fr; }
    RecommendScreen #recommend-inputs Select { width: 22; }
    RecommendScreen #candidates { height: 1fr; }
    RecommendScreen #recommend-status { height: auto; max-height: 4; padding: 0 1; }
    """
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, base_model: str = "builtin:tiny-llama", budget: str | None = None):
        super().__init__()
        self.base_model = base_model
        self.device, self.where, self.machine_bytes, self.machine_text = self._machine()
        self.budget = budget or self.machine_text
        if budget:
            self.device, self.where = "cuda", "the GPU asked for"
        self.found: list[Any] = []
        self.planned_budget = 0
        self.budget_typed = self.budget

    @staticmethod
    def _machine() -> tuple[str, str, int, str]:
        """What the editor and lf-tui plan assume (engine.planning.machine_budget): (device, where, budget bytes,
        the budget as the input shows it); a bad $LF_TUI_GPU_MEMORY is shown as typed, and its error on planning."""
        from engine.planning import BUDGET_ENV, PlanError, machine_budget

        try:
            device, budget, where = machine_budget()
        except PlanError:
            return "cuda", f"${BUDGET_ENV}", 0, os.environ.get(BUDGET_ENV, "")
        shown = os.environ.get(BUDGET_ENV) if device == "cuda" and where == f"${BUDGET_ENV}" else None
        return device, where, budget, shown or f"{budget / 2 ** 30:.1f}GiB"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("What fits: model, memory budget and goal; Enter on a row opens it in the editor",
                    classes="title")
        with Horizontal(id="recommend-inputs"):
            yield Input(self.base_model, placeholder="hub id, model folder or builtin:tiny-llama", id="model")
            yield Input(self.budget, placeholder="memory budget, e.g. 24GiB", id="budget")
            yield Select(GOALS, value="quality", allow_blank=False, id="goal")
        yield DataTable(id="candidates", cursor_type="row", zebra_stripes=True, fixed_columns=2)
        yield Static(id="recommend-status")
        yield FitFooter()

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#candidates", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*RECOMMEND_HEADERS)
        self.refresh_candidates()
        self.table.focus()

    @on(Input.Submitted)
    @on(Select.Changed)
    def refresh_candidates(self) -> None:
        model = self.query_one("#model", Input).value.strip()
        budget = self.query_one("#budget", Input).value.strip()
        goal = str(self.query_one("#goal", Select).value)
        self.query_one("#recommend-status", Static).update(f"planning {escape(model)} in {escape(budget)}…")
        self.found = []  # Enter does nothing until the new answer is in
        self.table.clear()
        self.compute(model, budget, goal)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def compute(self, model: str, budget_text: str, goal: str) -> None:
        """The planner for every method and setting (reading a hub model's config.json may take a moment)."""
        from textual.worker import get_current_worker

        from engine.planning import PlanError
        from engine.recommend import recommend
        from methods.memory_plan import parse_size

        worker = get_current_worker()
        budget = 0
        try:
            # the machine's own budget exactly as plan and the editor take it (the input shows it rounded)
            budget = self.machine_bytes if budget_text == self.machine_text and self.machine_bytes else \
                parse_size(budget_text)
            if budget < 1:
                raise ValueError("the memory budget must be positive, e.g. 24GiB")
            found, notes = recommend(model, budget, goal, self.device)  # type: ignore[arg-type]
            where = self.where if budget_text == self.machine_text else "as typed"
            place = f"{budget_text_of(budget, self.device)} ({escape(where)})"
            status = (f"{len(found)} fit {escape(model)} in {place}, {shown_line(len(found), len(found))} "
                      f"(↑/↓ scroll), best for {goal} first · " + escape(" · ".join(notes)) if found else
                      f"[yellow]nothing fits {escape(model)} in {place}[/yellow]: a smaller model or more memory")
        except ValueError as exc:
            found, status = [], f"[red]{escape(str(exc))}[/red]"
        except PlanError as exc:
            found, status = [], f"[red]{escape(exc.message)}[/red]\n{escape(exc.hint)}"
        except Exception as exc:  # a planner bug: say so instead of leaving "planning…" for ever
            found, status = [], f"[red]cannot plan: {escape(type(exc).__name__)}: {escape(str(exc))}[/red]"
        if not worker.is_cancelled:  # a newer request supersedes this one
            self.budget_typed = budget_text
            self.app.call_from_thread(self._show, found, status, budget)

    def _show(self, found: list[Any], status: str, budget: int = 0) -> None:
        if not self.is_attached:
            return
        self.found = found
        self.planned_budget = budget
        table = self.table
        table.clear()
        for row, candidate in zip(recommend_rows(found), found):
            table.add_row(*row, key=str(id(candidate)))
        self.query_one("#recommend-status", Static).update(status)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if not self.found:
            return
        candidate = self.found[event.cursor_row]
        from methods.catalogue import get_catalogue

        method = get_catalogue().get(candidate.method)
        # the editor's memory line plans for the same device and budget as this table
        self.post_message(OpenEditor(candidate.method, method.defaults_path,
                                     text=json.dumps(candidate.document, indent=2) + "\n",
                                     plan_for=(self.device, self.planned_budget,
                                               self.where if self.budget_typed == self.machine_text else "as typed")))
