"""Reads a finished or running run's curves and summary from its folder (for comparison views)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.launcher import follow_events
from engine.protocol import UnsupportedProtocol
from engine.run_store import RunDir
from lf_tui.run_model import RunModel


@dataclass
class RunRecord:
    """A run replayed from disk."""

    run: RunDir
    model: RunModel
    config: dict[str, Any] | None
    summary: dict[str, Any] | None


def load_run(run: RunDir, max_points: int = 500) -> RunRecord:
    """Replay what is on disk now (the runs list reports unreadable lines and unknown protocols)."""
    model = RunModel(max_points=max_points)
    try:
        for event in follow_events(run, follow=False):
            model.ingest(event)
    except UnsupportedProtocol:
        pass
    # the events' own ending; summary.json only when the events are gone (it may predate a resume under way)
    summary = model.summary() if model.started is not None else run.summary()
    return RunRecord(run, model, run.config(), summary)
