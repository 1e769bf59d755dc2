"""The runs list's logic: rows, sorting and filtering of RunInfo (no widgets)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.run_store import RunInfo
from lf_tui.formatting import duration, number

COLUMNS: list[tuple[str, str, Callable[[RunInfo], Any]]] = [
    ("run", "Run", lambda r: r.run_id),
    ("method", "Method", lambda r: r.method),
    ("base_model", "Base model", lambda r: r.base_model),
    ("status", "Status", lambda r: r.status),
    ("steps", "Steps", lambda r: r.steps),
    ("final_loss", "Final loss", lambda r: r.final_loss),
    ("best_loss", "Best loss", lambda r: r.best_loss),
    ("duration", "Duration", lambda r: r.duration_s),
    ("started", "Started", lambda r: r.started),
]
SORT_KEYS = [c[0] for c in COLUMNS]


def matches(info: RunInfo, text: str) -> bool:
    """Case-insensitive match on id, method, model and status; space-separated words must all match."""
    haystack = f"{info.run_id} {info.method} {info.base_model} {info.status}".lower()
    return all(word in haystack for word in text.lower().split())


def sort_runs(runs: list[RunInfo], key: str, descending: bool) -> list[RunInfo]:
    getter = dict((c[0], c[2]) for c in COLUMNS)[key]
    present = [r for r in runs if getter(r) is not None]
    missing = [r for r in runs if getter(r) is None]
    return sorted(present, key=getter, reverse=descending) + missing


def row(info: RunInfo) -> tuple[str, ...]:
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started)) if info.started else "—"
    status = info.status + (" ⚠" if info.problems else "")
    steps = f"{info.steps}/{info.total_steps}" if info.total_steps else str(info.steps)
    return (info.run_id, info.method or "?", info.base_model or "?", status, steps, number(info.final_loss),
            number(info.best_loss), duration(info.duration_s), started)
