"""Screen 3: one run live (or replayed): curves, gauges, progress, eval, log tail, cancel, summary."""

from __future__ import annotations

import threading
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, RichLog, Static

from engine.launcher import EngineProcess, cancel_pid, follow_events
from engine.run_store import RunDir
from lf_tui import run_text
from lf_tui.formatting import duration
from lf_tui.run_model import RunModel
from lf_tui.widgets.dialogs import ConfirmScreen
from lf_tui.widgets.plots import CurvePlot

LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


class RunScreen(Screen[None]):
    """Follows a run from its engine pipe (when this app started it) or its events.jsonl (any run)."""

    BINDINGS = [Binding("c", "cancel_run", "Cancel run"), Binding("escape", "back", "Back (run goes on)")]

    def __init__(self, run: RunDir, process: EngineProcess | None = None, redraw_s: float = 0.25):
        super().__init__()
        self.run = run
        self.process = process
        self.model = RunModel()
        self.lock = threading.Lock()
        self.redraw_s = redraw_s
        self._drawn_version = -1
        self._logs_seen = 0
        self._stop = threading.Event()
        self.trust_remote_code = bool(run.meta().get("trust_remote_code"))
        self.engine_gone = False  # set by the reader thread, so redraws never touch the disk

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(f"Run {self.run.run_id}", id="run-title", classes="title")
        with Horizontal(id="plots"):
            yield CurvePlot("training loss", id="loss-plot")
            yield CurvePlot("learning rate", id="lr-plot")
        with Horizontal(id="run-figures"):
            with Vertical():
                yield Static(id="figures")
                yield ProgressBar(total=1.0, show_eta=False, id="progress")
            yield Static(id="gauges")
        yield RichLog(id="log", max_lines=500, markup=False, wrap=True)
        yield Static(id="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#loss-plot", CurvePlot).set_series([("loss", self.model.loss), ("eval", self.model.eval_loss)])
        self.query_one("#lr-plot", CurvePlot).set_series([("lr", self.model.lr)])
        self.read_events()
        self.set_interval(self.redraw_s, self.redraw)

    def on_unmount(self) -> None:
        self._stop.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="run-events")
    def read_events(self) -> None:
        """Reads in a thread; the UI only takes snapshots on a timer, so floods never block it."""
        stop = self._stop.is_set
        source = self.process.events(stop) if self.process else follow_events(self.run, stop=stop)
        for event in source:
            with self.lock:
                self.model.ingest(event)
            if self._stop.is_set():
                return
        if not self._stop.is_set():
            with self.lock:  # the stream ended: did the engine die without a final event?
                self.engine_gone = self.model.finished is None and not self.run.engine_alive()
                self.model.version += 1

    def on_worker_state_changed(self, event: Any) -> None:
        if event.worker.error is not None:
            with self.lock:
                self.model._log("error", f"cannot read events: {event.worker.error}")

    def redraw(self) -> None:
        with self.lock:
            if self.model.version == self._drawn_version:
                return
            self._drawn_version = self.model.version
            self._draw(self.model)

    def _draw(self, m: RunModel) -> None:
        st, s = m.started, m.last_step
        status = m.status
        if status in ("starting", "running") and self.engine_gone and m.finished is None:
            status = "crashed"
        head = f"Run {self.run.run_id} · {status}"
        if st:
            head += " · " + run_text.header(st)
            if self.trust_remote_code:
                head += " · ⚠ trust_remote_code ON"
        self.query_one("#run-title", Label).update(head)
        figures = "waiting for the first step…"
        if s:
            figures = (f"step {s.step}/{s.total_steps}  epoch {s.epoch:.2f}  loss {s.loss:.4f}  "
                       f"lr {s.learning_rate:.3g}\ntokens/s {s.tokens_per_s:,.0f}  elapsed {duration(s.elapsed_s)}"
                       f"  ETA {duration(s.eta_s)}")
        if m.last_eval:
            figures += f"\neval loss {m.last_eval.eval_loss:.4f}  perplexity {m.last_eval.perplexity:.2f}"
        self.query_one("#figures", Static).update(figures)
        self.query_one("#progress", ProgressBar).update(progress=m.progress)
        self.query_one("#gauges", Static).update(self._gauges(m))
        self.query_one("#loss-plot", CurvePlot).redraw()
        self.query_one("#lr-plot", CurvePlot).redraw()
        log = self.query_one("#log", RichLog)
        from rich.text import Text

        for level, message in m.new_logs(self._logs_seen):
            log.write(Text(f"{level:>7} {message}", style=LEVEL_STYLE.get(level, "")))
        self._logs_seen = m.logs_total
        self.query_one("#summary", Static).update(self._summary(m.finished.summary) if m.finished else "")

    @staticmethod
    def _bar(fraction: float, width: int = 20) -> str:
        filled = int(round(max(0.0, min(1.0, fraction)) * width))
        return "█" * filled + "░" * (width - filled)

    def _gauges(self, m: RunModel) -> str:
        sys_ = m.system
        if sys_ is None:
            return "system: waiting for a sample"
        lines = []
        for g in sys_.gpus:
            used, total = g.get("memory_used_mb", 0), g.get("memory_total_mb", 1) or 1
            lines.append(f"GPU{g.get('index', 0)} mem {self._bar(used / total)} {used / 1024:.1f}/{total / 1024:.1f}"
                         f" GiB\n     util {self._bar(g.get('utilization', 0) / 100)} {g.get('utilization', 0):.0f}%")
        if not sys_.gpus:
            lines.append(f"CPU  {self._bar(min(sys_.cpu_percent, 100) / 100)} {sys_.cpu_percent:.0f}%")
            total = sys_.ram_total_mb or 1
            lines.append(f"RAM  {self._bar(sys_.ram_used_mb / total)} {sys_.ram_used_mb / 1024:.1f}/"
                         f"{total / 1024:.1f} GiB (engine RSS {sys_.rss_mb / 1024:.2f} GiB)")
        return "\n".join(lines)

    @staticmethod
    def _summary(summary: dict[str, Any]) -> str:
        rows = run_text.summary_rows(summary)
        figures = " · ".join(f"{label} {value}" for label, value in rows[1:] if label != "convergence")
        return f"[b]Run {escape(rows[0][1])}[/b] · {escape(figures)}\nconvergence: {escape(dict(rows)['convergence'])}"

    def action_cancel_run(self) -> None:
        with self.lock:
            if self.model.finished is not None:
                self.notify("the run has already ended")
                return

        def decided(yes: bool | None) -> None:
            if not yes:
                return
            if self.process is not None:
                self.process.cancel()
            else:
                pid = int(self.run.engine_info().get("pid") or 0)
                if not (self.run.engine_alive() and cancel_pid(pid)):
                    self.notify("the engine is not running", severity="warning")
                    return
            self.notify("cancelling: the engine saves a checkpoint and stops at the next step")

        self.app.push_screen(ConfirmScreen("Cancel this run? A checkpoint is saved first.", "Cancel run",
                                           "Keep training"), decided)

    def action_back(self) -> None:
        self._stop.set()
        self.app.pop_screen()
