"""The state of one run as its events arrive: figures, bounded curves, gauges and a log tail (no widgets)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.launcher import SegmentOpened
from engine.protocol import (
    Checkpoint,
    Control,
    Error,
    Eval,
    Event,
    Finished,
    Log,
    RunStarted,
    Step,
    System,
    add_change_points,
)
from lf_tui.curve import Curve
from lf_tui.present import gauges, run_text
from lf_tui.run_alerts import Alert, AlertWatch


@dataclass
class RunState:
    """Everything the run view and the CLI live view show; fed one event at a time."""

    max_points: int = 2000
    log_lines: int = 200
    started: RunStarted | None = None
    last_step: Step | None = None
    last_eval: Eval | None = None
    system: System | None = None
    finished: Finished | None = None
    error: Error | None = None
    checkpoints: list[Checkpoint] = field(default_factory=list)
    events_seen: int = 0
    segments: int = 1
    version: int = 0  # bumps on every change, so views redraw only when needed
    engine_gone: bool = False  # the stream ended without a final event and the engine is dead

    def __post_init__(self) -> None:
        self.loss = Curve(self.max_points)
        self.lr = Curve(self.max_points)
        self.eval_loss = Curve(self.max_points)
        self.logs: deque[tuple[str, str]] = deque(maxlen=self.log_lines)
        self.method_metrics: dict[str, list[list[float]]] = {}  # the method's figures: name -> [[step, value]...]
        self.logs_total = 0
        self.watch = AlertWatch()
        self.alerts: list[Alert] = []  # every alert raised, in order (views show those they have not shown)
        self.controls: list[Control] = []  # the engine's answers to live control requests

    def _log(self, level: str, message: str) -> None:
        self.logs.append((level, message))
        self.logs_total += 1

    def note(self, level: str, message: str) -> None:
        """A line from the viewer itself (not the engine) in the log tail; views redraw for it."""
        self._log(level, message)
        self.version += 1

    def new_logs(self, seen_total: int) -> list[tuple[str, str]]:
        """Log lines added since `seen_total` (those still in the tail)."""
        fresh = min(self.logs_total - seen_total, len(self.logs))
        return list(self.logs)[len(self.logs) - fresh:] if fresh > 0 else []

    def ingest(self, event: Event) -> None:
        self.events_seen += 1
        self.version += 1
        if isinstance(event, Step):
            self.last_step = event
            self.loss.append(event.step, event.loss)
            self.lr.append(event.step, event.learning_rate)
            add_change_points(self.method_metrics, event.step, event.method_metrics)  # as the summary keeps them
            self._alert(self.watch.step(event.step, event.loss), event.ts)
        elif isinstance(event, System):
            self.system = event
        elif isinstance(event, Eval):
            self.last_eval = event
            self.eval_loss.append(event.step, event.eval_loss)
            self._alert(self.watch.eval(event.step, event.eval_loss), event.ts)
        elif isinstance(event, Log):
            self._log(event.level, event.message)
        elif isinstance(event, RunStarted):
            if self.started is not None:  # a later segment (a resume): the run is open again
                self.reopen()
                self.segments += 1
                for curve in (self.loss, self.lr, self.eval_loss):  # steps after the checkpoint are redone
                    curve.truncate(event.resumed_from_step)
                self.watch.truncate(event.resumed_from_step)
                for series in self.method_metrics.values():
                    series[:] = [point for point in series if point[0] <= event.resumed_from_step]
                self._log("info", f"resumed from step {event.resumed_from_step}")
            self.started = event
            if event.nvml and "unavailable" in event.nvml:  # why there are no GPU gauges
                self._log("info", event.nvml)
        elif isinstance(event, SegmentOpened):
            self.reopen()
            self._log("info", "a new engine is resuming this run (loading)")
        elif isinstance(event, Checkpoint):
            self.checkpoints.append(event)
            self._log("info", f"checkpoint at step {event.step}: {event.path}")
        elif isinstance(event, Control):
            self.controls.append(event)
            level = "warning" if event.status == "refused" else "info"
            self._log(level, f"control {event.action.replace('_', ' ')}: {event.status} at step {event.step}"
                             + (f" ({event.detail})" if event.detail else ""))
        elif isinstance(event, Error):
            self.error = event
            self._log("error", f"{event.kind}: {event.message}" + (f" — {event.hint}" if event.hint else ""))
        elif isinstance(event, Finished):
            self.finished = event

    def _alert(self, alerts: list[Alert], ts: float) -> None:
        for alert in alerts:
            alert.ts = ts
            self.alerts.append(alert)
            self._log("warning", f"alert: {alert.message}")

    def reopen(self) -> None:
        """The run's last ending is history: a resumed segment is under way."""
        self.finished, self.error = None, None

    @property
    def status(self) -> str:
        if self.finished is not None:
            return self.finished.status
        if self.error is not None:
            return "failed"
        return "running" if self.started else "starting"

    @property
    def total_steps(self) -> int:
        if self.last_step and self.last_step.total_steps:
            return self.last_step.total_steps
        return self.started.total_steps if self.started else 0

    @property
    def progress(self) -> float:
        total = self.total_steps
        return min(1.0, self.last_step.step / total) if total and self.last_step else 0.0

    @property
    def shown_status(self) -> str:
        """The status word to show: a run whose engine died without a final event is crashed."""
        status = self.status
        return "crashed" if status in ("starting", "running") and self.engine_gone else status

    def memory_lines(self) -> list[str]:
        """Per-GPU memory/utilisation, or process CPU and RAM where there is no GPU; the planned peak after them."""
        planned = run_text.planned_line(self.started)
        return [*gauges.memory_lines(self.system), *([planned] if planned else [])]

    def summary(self) -> dict[str, Any] | None:
        return self.finished.summary if self.finished else None
