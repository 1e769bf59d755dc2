"""A run's ending read from its folder: the error of its last segment (the tail of events.jsonl, else summary.json)."""

from __future__ import annotations

import os
import threading
from typing import Any

from engine.protocol import Error, EventReader, UnsupportedProtocol
from engine.run_store import RunDir, RunInfo
from lf_tui.present.ending import FAILED, RESUMABLE, Failure, failure_of, next_steps, reason

TAIL_BYTES = 256 * 1024  # an error event (its traceback included) is far smaller; a finished event follows it

_CACHE: dict[str, tuple[tuple[int, float], Failure | None]] = {}
_LOCK = threading.Lock()


def last_error(run: RunDir) -> Error | None:
    """The error event of the run's last segment (after its last run_started), from the file's tail."""
    try:
        with open(run.events_path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            chunk = fh.read()
    except OSError:
        return None
    lines = chunk.split(b"\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line is cut short
    reader, found = EventReader(), None
    for line in lines:
        try:
            event = reader.feed(line)
        except UnsupportedProtocol:
            return None
        if isinstance(event, Error):
            found = event
        elif event is not None and event.type == "run_started":
            found = None  # a later segment: an earlier error is history
    return found


def run_failure(run: RunDir, summary: dict[str, Any] | None = None) -> Failure | None:
    """The failure of a run that failed (kind, message, hint); cached while its events file is unchanged."""
    try:
        st = os.stat(run.events_path)
        key: tuple[int, float] = (st.st_size, st.st_mtime)
    except OSError:
        key = (-1, 0.0)
    with _LOCK:
        cached = _CACHE.get(str(run.path))
    if cached is not None and cached[0] == key:
        return cached[1]
    if summary is None:  # no summary.json: a disk too full for it may have left the ending in engine.json alone
        ended = run.engine_info().get("ended")
        summary = run.summary() or (ended if isinstance(ended, dict) else None)
    found = failure_of(last_error(run), summary)
    with _LOCK:
        _CACHE[str(run.path)] = (key, found)
    return found


def info_failure(info: RunInfo) -> Failure | None:
    """A listed run's failure; None unless it failed or crashed (a crash may have said why before it died)."""
    return run_failure(RunDir(info.path)) if info.status in FAILED else None


def info_reason(info: RunInfo) -> str:
    """The runs table's reason cell."""
    return reason(info.status, info_failure(info))


def info_next_steps(info: RunInfo, in_app: bool = False) -> list[str]:
    """What to do next about a listed run (nothing for a completed or live one)."""
    run = RunDir(info.path)
    refusal = run.resume_refusal(info.status) if info.status in RESUMABLE else None
    return next_steps(info.run_id, info.status, info_failure(info), refusal, in_app)
