"""Optional metric sinks: TensorBoard (tensorboard_log_dir) and Weights & Biases (wandb_project)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.protocol import System
from methods.tracker_extras import missing_message, wandb_configured

Log = Callable[[str, str], None]


def system_figures(event: System) -> dict[str, float]:
    """A system event's gauges as tracker scalars (system/...; a GPU's as system/gpu<index>_...)."""
    figures = {"system/cpu_percent": float(event.cpu_percent), "system/rss_mb": float(event.rss_mb),
               "system/ram_used_mb": float(event.ram_used_mb)}
    for gpu in event.gpus:
        index = gpu.get("index", 0)
        for key in ("memory_used_mb", "utilization"):
            if isinstance(gpu.get(key), (int, float)):
                figures[f"system/gpu{index}_{key}"] = float(gpu[key])
    return figures


def resumed_step(run_path: Path | None) -> int | None:
    """The step a resume of this run continues from (its latest complete checkpoint); None for a fresh run."""
    if run_path is None:
        return None
    from engine.run_store import RunDir

    latest = RunDir(run_path).latest_checkpoint()
    return int(latest.name.split("-")[1]) if latest is not None else None


class Trackers:
    """The configured sinks; one that fails is dropped with a warning, never the run."""

    def __init__(self, log: Log, step: int):
        self.log, self.step = log, step
        self.sinks: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    def _each(self, call: Callable[[Any], None]) -> None:
        with self._lock:
            if self._closed:
                return
            for name, sink in list(self.sinks):
                try:
                    call(sink)
                except Exception as exc:  # a tracker's failure must not end the training
                    self.sinks.remove((name, sink))
                    self.log("warning", f"{name} stopped logging: {type(exc).__name__}: {exc}")

    def metrics(self, figures: dict[str, float], step: int) -> None:
        self.step = max(self.step, step)
        self._each(lambda sink: sink.scalars(figures, step))

    def system(self, event: Any) -> None:
        """A system sample, at the latest step (the gauges between two steps belong to the one before)."""
        if isinstance(event, System):
            self._each(lambda sink: sink.scalars(system_figures(event), self.step, walltime=event.ts))

    def close(self) -> None:
        self._each(lambda sink: sink.close())
        with self._lock:
            self._closed = True


def _open(trackers: Trackers, name: str, opener: Callable[[], Any], describe: Callable[[Any], str]) -> None:
    try:
        sink = opener()
    except Exception as exc:
        trackers.log("warning", f"{name} could not start ({type(exc).__name__}: {exc}): the run logs nothing there")
        return
    trackers.sinks.append((name, sink))
    trackers.log("info", describe(sink))


def make_external_logger(monitoring: Any, run_id: str, config: dict[str, Any], log: Log,
                         run_path: Path | None = None, monitor: Any = None
                         ) -> tuple[Callable[[dict[str, float], int], None], Callable[[], None]]:
    """Return (log_metrics, close); a tracker that is not installed or configured is skipped with a warning.

    `run_path`: the run folder (the W&B run id is kept there; a resume continues from its latest checkpoint);
    `monitor`: the SystemMonitor, whose system events then reach the trackers too."""
    start = resumed_step(run_path)
    trackers = Trackers(log, start or 0)
    if monitoring.tensorboard_log_dir:
        try:
            importlib.import_module("tensorboard")  # untyped: imported by name
        except ImportError:
            log("warning", missing_message("tensorboard_log_dir"))
        else:
            from engine import tracker_tensorboard as tb

            _open(trackers, "TensorBoard", lambda: tb.TensorBoardSink(monitoring.tensorboard_log_dir, run_id, start),
                  tb.describe)
    if monitoring.wandb_project:
        try:
            import wandb  # noqa: F401
        except ImportError:
            log("warning", missing_message("wandb_project"))
        else:
            if not wandb_configured():
                log("warning", "monitoring.wandb_project is set but W&B is not configured, so the run logs nothing "
                               "there: set WANDB_API_KEY, run `wandb login`, or set WANDB_MODE=offline")
            else:
                from engine import tracker_wandb as wb

                _open(trackers, "W&B", lambda: wb.WandbSink(monitoring.wandb_project, run_id, config, run_path),
                      wb.describe)
    if monitor is not None and trackers.sinks:
        emit = monitor.emit

        def tee(event: Any) -> None:
            emit(event)  # the run's record first
            trackers.system(event)

        monitor.emit = tee
    return trackers.metrics, trackers.close
