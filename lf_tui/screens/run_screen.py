"""Screen 3: one run live (or replayed): curves, gauges, progress, eval, log tail, cancel, summary."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Label, ProgressBar, Static
from textual.worker import Worker

from engine.launcher import EngineProcess, follow_events
from engine.run_store import RunDir
from lf_tui.curve import next_smoothing
from lf_tui.messages import ResumeRequested
from lf_tui.present import ending, run_text
from lf_tui.present.gauges import gauges
from lf_tui.run_state import RunState
from lf_tui.widgets.dialogs import ConfirmScreen
from lf_tui.widgets.fit_footer import FitFooter
from lf_tui.widgets.plots import POINTS, CurvePlot
from lf_tui.widgets.reflow_log import ReflowLog

FRESH_S = 30.0  # an alert or a control answer older than this (a replay) is logged, not announced
OPENED_SLACK_S = 2.0  # nor one that came before the view opened (a crashed run's last answer is history)
LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


class RunScreen(Screen[None]):
    """Follows a run from its engine pipe (when this app started it) or its events.jsonl (any run)."""

    # an ended run (completed, failed, cancelled, crashed) has no engine to answer c/k/e: the keys leave the
    # footer and say why when pressed; r resumes; Esc no longer says the run goes on
    BINDINGS = [Binding("c", "cancel_run", "Cancel run"), Binding("k", "control('checkpoint')", "Checkpoint now"),
                Binding("e", "control('stop_after_eval')", "Stop after eval"),
                Binding("c", "refuse('cancel')", show=False), Binding("k", "refuse('checkpoint')", show=False),
                Binding("e", "refuse('stop_after_eval')", show=False), Binding("r", "resume", "Resume"),
                Binding("s", "smooth", "Smooth loss"), Binding("l", "log_scale", "Log scale"),
                Binding("escape", "back", "Back (run goes on)"), Binding("escape", "leave", "Back")]
    LIVE_ONLY = ("cancel_run", "control", "back")
    ENDED_ONLY = ("refuse", "resume", "leave")

    def __init__(self, run: RunDir, process: EngineProcess | None = None, redraw_s: float = 0.25):
        super().__init__()
        self.run = run
        self.process = process
        self.state = RunState()
        self.state_lock = threading.Lock()
        self.redraw_s = redraw_s
        self._drawn_version = -1
        self._logs_seen = 0
        self._alerts_seen = 0
        self._controls_seen = 0
        self._opened = time.time()
        self._stop = threading.Event()
        self.trust_remote_code = bool(run.meta().get("trust_remote_code"))

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
        yield ReflowLog(id="log", max_lines=500)
        yield Static(id="summary")
        yield FitFooter()

    def on_resize(self) -> None:
        self.set_class(self.size.height < 32, "short")

    def on_mount(self) -> None:
        self.query_one("#loss-plot", CurvePlot).set_series([("loss", self.state.loss),
                                                            ("eval", self.state.eval_loss, POINTS)])
        self.query_one("#lr-plot", CurvePlot).set_series([("lr", self.state.lr)])
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
            with self.state_lock:
                self.state.ingest(event)
            if self._stop.is_set():
                return
        if not self._stop.is_set():
            with self.state_lock:  # the stream ended: did the engine die without a final event?
                self.state.engine_gone = self.state.finished is None and not self.run.engine_alive()
                self.state.version += 1

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.error is not None:
            with self.state_lock:
                self.state.note("error", f"cannot read events: {event.worker.error}")

    def redraw(self) -> None:
        with self.state_lock:
            if self.state.version == self._drawn_version:
                return
            self._drawn_version = self.state.version
            self._draw(self.state)

    def _draw(self, m: RunState) -> None:
        self.query_one("#run-title", Label).update(
            run_text.title(self.run.run_id, m.shown_status, m.started, self.trust_remote_code))
        ended = m.finished is not None or m.engine_gone
        if m.last_step:
            figures = run_text.step_line(m.last_step, lines=2, ended=ended)
        elif m.finished is not None:  # ended without a step: failed early, or made from other runs (fused)
            figures = ("no training steps: made from other runs (its summary says how)"
                       if (m.finished.summary or {}).get("fusion") else "no training steps")
        else:
            figures = "waiting for the first step…"
        if m.last_eval:
            figures += "\n" + run_text.eval_line(m.last_eval)
        figures = "\n".join([figures, *map(escape, run_text.method_lines(m.method_metrics))])
        self.query_one("#figures", Static).update(figures)
        self.query_one("#progress", ProgressBar).update(progress=m.progress)
        self.query_one("#gauges", Static).update(self._gauges(m))
        self.query_one("#loss-plot", CurvePlot).redraw()
        self.query_one("#lr-plot", CurvePlot).redraw()
        log = self.query_one("#log", ReflowLog)
        for level, message in m.new_logs(self._logs_seen):
            log.write(Text(f"{level:>7} {message}", style=LEVEL_STYLE.get(level, "")))
        self._logs_seen = m.logs_total
        self._tell(m)
        self.query_one("#summary", Static).update(self._summary(m) if ended else "")
        if ended != self.has_class("ended"):
            self.set_class(ended, "ended")
            self.refresh_bindings()  # an ended run cannot be cancelled: its key leaves the footer, resume comes

    @staticmethod
    def _gauges(m: RunState) -> Text:
        shown = gauges(m.system)
        if not shown:
            return Text("system: no samples" if m.finished is not None else "system: waiting for a sample")
        width = max(len(g.label) for g in shown)
        lines = []
        for g in shown:
            filled = int(round(g.fraction * 20))
            lines.append(f"{g.label:<{width}} {'█' * filled}{'░' * (20 - filled)} {g.text}")
        planned = run_text.planned_line(m.started)
        return Text("\n".join([*lines, *([planned] if planned else [])]))

    def _summary(self, m: RunState) -> str:
        """How the run ended: a failed, cancelled or crashed run's error, fix and resume on the first lines (kept
        at 80x24), then its figures; a completed run's figures and convergence."""
        status = m.shown_status
        summary: dict[str, Any] = (m.finished.summary if m.finished is not None else None) or {"status": status}
        refusal = self.run.resume_refusal(status) if status in ending.RESUMABLE else None
        lines = ending.ended_lines(self.run.run_id, status, ending.failure_of(m.error, summary), refusal, in_app=True)
        rows = run_text.summary_rows(summary) if m.finished is not None else []
        figures = escape(" · ".join(f"{label} {value}" for label, value in rows[1:] if label != "convergence"
                                    and (status == "completed" or value != "—")))  # short: what is known
        head = f"[b]{escape(run_text.summary_title({**summary, 'status': status}))}[/b]"
        if not lines:  # completed
            convergence = [f"convergence: {escape(dict(rows)['convergence'])}"] if rows else []
            return "\n".join([f"{head} · {figures}" if figures else head, *convergence])
        first, *rest = map(escape, lines)
        return "\n".join([f"{head} · {first}", *rest, *([figures] if figures else [])])

    def _tell(self, m: RunState) -> None:
        """New alerts ring the bell and notify, and the engine's answers to live controls notify, when they are
        fresh (a replay of old events only logs them)."""
        now = time.time()

        def fresh(ts: float) -> bool:
            return now - ts < FRESH_S and ts >= self._opened - OPENED_SLACK_S

        for alert in m.alerts[self._alerts_seen:]:
            if fresh(alert.ts) and m.finished is None:
                self.app.bell()
                self.notify(alert.message, title="alert", severity="warning", timeout=15)
        self._alerts_seen = len(m.alerts)
        for answer in m.controls[self._controls_seen:]:
            if fresh(answer.ts):
                self.notify(f"{answer.action.replace('_', ' ')}: {answer.status}"
                            + (f" — {answer.detail}" if answer.detail else ""),
                            severity="warning" if answer.status == "refused" else "information")
        self._controls_seen = len(m.controls)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        ended = self.has_class("ended")
        if action in self.LIVE_ONLY:
            return not ended
        if action == "resume":  # offered only where it can work: an ended run with a complete checkpoint
            return ended and self.state.shown_status in ending.RESUMABLE and self.run.latest_checkpoint() is not None
        if action in self.ENDED_ONLY:
            return ended
        return True

    def action_refuse(self, action: str) -> None:
        """c, k or e on a run with no engine left: why nothing happens."""
        self.notify(ending.ended_refusal(self.state.shown_status, action), severity="warning")

    def action_resume(self) -> None:
        """Continue the run from its last checkpoint (the app launches it and shows the resumed run); refused here,
        the view kept, when it cannot resume or its folder cannot be written."""
        refusal = self.run.resume_refusal() or self.run.writable_refusal()
        if refusal:
            self.notify(refusal, severity="warning", timeout=8)
            return
        self._stop.set()
        self.app.pop_screen()
        self.app.post_message(ResumeRequested(self.run))

    def action_leave(self) -> None:
        self.action_back()

    def action_control(self, action: str) -> None:
        """Checkpoint now, or stop after the next evaluation: a request the engine answers with a control event."""
        from engine.control_requests import ControlRefused, send

        with self.state_lock:
            if self.state.finished is not None:
                self.notify("the run has already ended")
                return
        try:
            send(self.run.path, action, source="the app's run view")
        except (ControlRefused, OSError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify("asked the engine to checkpoint now" if action == "checkpoint"
                    else "asked the engine to stop after the next evaluation (with a checkpoint)")

    def action_cancel_run(self) -> None:
        with self.state_lock:
            if self.state.finished is not None:
                self.notify("the run has already ended")
                return

        def decided(yes: bool | None) -> None:
            if not yes:
                return
            if self.process is not None and self.process.running:
                self.process.cancel()  # the engine this app started: through its pipe, even before engine.json
                refusal = None
            else:
                refusal = self.run.cancel()
            if refusal:
                self.notify(refusal, severity="warning")
            else:
                self.notify("cancelling: the engine saves a checkpoint and stops at the next step")

        self.app.push_screen(ConfirmScreen("Cancel this run? A checkpoint is saved first.", "Cancel run",
                                           "Keep training"), decided)

    def action_smooth(self) -> None:
        """Cycle the loss curve's EMA smoothing: none, 0.6, 0.9, 0.97 (the raw curve stays, dimmed)."""
        plot = self.query_one("#loss-plot", CurvePlot)
        plot.smoothing = next_smoothing(plot.smoothing)
        with self.state_lock:
            plot.redraw()
        self.notify(f"loss smoothing: {plot.smoothing:g}" if plot.smoothing else "loss smoothing: off")

    def action_log_scale(self) -> None:
        plot = self.query_one("#loss-plot", CurvePlot)
        plot.log_y = not plot.log_y
        with self.state_lock:
            plot.redraw()

    def action_back(self) -> None:
        self._stop.set()
        self.app.pop_screen()
