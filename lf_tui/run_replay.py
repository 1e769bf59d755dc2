"""Replays a run's folder (events, config, summary) into a RunState, for the comparison view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.launcher import follow_events
from engine.protocol import UnsupportedProtocol
from engine.run_store import RunDir
from lf_tui.present.ending import Failure, failure_of
from lf_tui.run_state import RunState


@dataclass
class ReplayedRun:
    """A run replayed from disk."""

    run: RunDir
    state: RunState
    config: dict[str, Any] | None
    summary: dict[str, Any] | None
    status: str = "unknown"  # as the runs list says it (a crashed run has no summary to say so)
    failure: Failure | None = None  # a failed run's error: kind, message, fix


def replay_run(run: RunDir, max_points: int = 500) -> ReplayedRun:
    """Replay what is on disk now (the runs list reports unreadable lines and unknown protocols)."""
    state = RunState(max_points=max_points)
    try:
        for event in follow_events(run, follow=False):
            state.ingest(event)
    except UnsupportedProtocol:
        pass
    # the events' own ending; summary.json only when the events are gone (it may predate a resume under way)
    summary = state.summary() if state.started is not None else run.summary()
    status = run.info().status
    failure = failure_of(state.error, summary) if status in ("failed", "crashed") else None
    return ReplayedRun(run, state, run.config(), summary, status, failure)
