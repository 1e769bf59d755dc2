"""Reads a finished or running run's curves and summary from its folder (for comparison views)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.protocol import EventReader, UnsupportedProtocol
from engine.run_store import RunDir
from lf_tui.run_model import RunModel


@dataclass
class RunRecord:
    """A run replayed from disk."""

    run: RunDir
    model: RunModel
    config: dict[str, Any] | None
    summary: dict[str, Any] | None
    problem: str = ""


def load_run(run: RunDir, max_points: int = 500) -> RunRecord:
    model = RunModel(max_points=max_points)
    problem = ""
    reader = EventReader()
    try:
        with open(run.events_path, "rb") as fh:
            for event in reader.feed_all(fh):
                model.ingest(event)
    except FileNotFoundError:
        problem = "no events.jsonl"
    except UnsupportedProtocol as exc:
        problem = str(exc)
    if reader.skipped:
        problem = f"{reader.skipped} unreadable event line(s) skipped"
    return RunRecord(run, model, run.config(), run.summary() or model.summary(), problem)
