"""The runs list (CLI table and Runs screen): columns, rows, sorting and filtering of RunInfo."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.benchmark_report import verdict
from engine.run_store import RunDir, RunInfo
from lf_tui.present.formatting import duration, number
from lf_tui.present.run_text import deployment_fields
from lf_tui.run_ending import info_reason


def _figure(name: str) -> Callable[[RunInfo], Any]:
    return lambda r: (r.deployment or {}).get(name)


def short_id(run_id: str) -> str:
    """The tail of a run id that tells runs apart in a narrow cell: `lora-38b8` of `20261202-032914-lora-38b8`."""
    parts = run_id.split("-")
    return "-".join(parts[2:]) if len(parts) > 3 and parts[0].isdigit() else run_id


def parents(info: RunInfo) -> str | None:
    """A derived (fused) run's parents, by their short ids: `lora-38b8+lora-1bcb`; None for a trained run."""
    return "+".join(short_id(p) for p in info.derived_from) or None


def ended_reason(info: RunInfo) -> str | None:
    """Why the run ended, when it did not complete (the error's kind and message, a crash, a cancel)."""
    text = info_reason(info)
    return None if text == "—" else text


def bench(info: RunInfo) -> str | None:
    """The run against its config's benchmarks block (`lf-tui report`): pass, fail, incomplete; None without one."""
    found = verdict(RunDir(info.path))
    return None if found == "no thresholds" else found


COLUMNS: list[tuple[str, str, Callable[[RunInfo], Any]]] = [
    ("run", "run", lambda r: r.run_id),
    ("method", "method", lambda r: r.method),
    ("base_model", "base model", lambda r: r.base_model),
    ("status", "status", lambda r: r.status),
    ("steps", "steps", lambda r: r.steps),
    ("final_loss", "final loss", lambda r: r.final_loss),
    ("best_loss", "best loss", lambda r: r.best_loss),
    ("derived_from", "from", parents),
    ("bench", "bench", bench),
    ("adapter_bytes", "adapter", _figure("adapter_bytes")),
    ("tokens_per_s", "tok/s", _figure("tokens_per_s")),
    ("duration", "duration", lambda r: r.duration_s),
    ("started", "started", lambda r: r.started),
]
SORT_KEYS = [c[0] for c in COLUMNS]
REASON = "reason"  # why a run ended: a last column where the others leave room (`lf-tui runs`), not a sort key
LABELS = {**{key: label for key, label, _ in COLUMNS}, REASON: "reason"}
# an 80-column terminal: the columns that matter, whole; shorter labels
COMPACT_KEYS = ["run", "method", "status", "steps", "final_loss", "duration"]
COMPACT_LABELS = {**LABELS, "final_loss": "loss", "duration": "time"}
COMPACT_BELOW = 120  # terminal columns
# up to WIDE_FROM columns: a fused run's parents instead of the best loss, no deployment figures
MEDIUM_KEYS = ["run", "method", "base_model", "status", "steps", "final_loss", "derived_from", "bench", "duration",
               "started"]
WIDE_FROM = 180


def columns_for(width: int) -> tuple[list[str], dict[str, str]]:
    """The column keys and labels for a terminal `width` columns wide (compact below COMPACT_BELOW, every column
    from WIDE_FROM); REASON may follow them where the room left allows."""
    if width < COMPACT_BELOW:
        return COMPACT_KEYS, COMPACT_LABELS
    return (MEDIUM_KEYS, LABELS) if width < WIDE_FROM else (SORT_KEYS, LABELS)


def matches(info: RunInfo, text: str) -> bool:
    """Case-insensitive match on id, method, model, status and a fused run's parents; space-separated words must
    all match."""
    haystack = f"{info.run_id} {info.method} {info.base_model} {info.status} {' '.join(info.derived_from)}".lower()
    return all(word in haystack for word in text.lower().split())


def sort_runs(runs: list[RunInfo], key: str, descending: bool) -> list[RunInfo]:
    getter = dict((c[0], c[2]) for c in COLUMNS)[key]
    present = [r for r in runs if getter(r) is not None]
    missing = [r for r in runs if getter(r) is None]
    return sorted(present, key=getter, reverse=descending) + missing


BENCH_MARKS = {"pass": "✓ pass", "fail": "✗ fail", "incomplete": "… part", "unreadable": "?"}


def cells(info: RunInfo) -> dict[str, str]:
    """A run's cells by column key."""
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started)) if info.started else "—"
    steps = f"{info.steps}/{info.total_steps}" if info.total_steps else str(info.steps)
    figures = deployment_fields(info.deployment)
    return {"run": info.run_id, "method": info.method or "?", "base_model": info.base_model or "?",
            "status": info.status + (" ⚠" if info.problems else ""), "reason": ended_reason(info) or "—", "steps": steps,
            "final_loss": number(info.final_loss), "best_loss": number(info.best_loss),
            "derived_from": parents(info) or "—", "bench": BENCH_MARKS.get(bench(info) or "", "—"),
            "adapter_bytes": figures["adapter size"],
            "tokens_per_s": figures["tokens/s"], "duration": duration(info.duration_s), "started": started}


def row(info: RunInfo, keys: list[str] | None = None) -> tuple[str, ...]:
    """A run's cells in column order (all columns, or `keys`)."""
    by_key = cells(info)
    return tuple(by_key[k] for k in (keys or SORT_KEYS))


def problem_lines(runs: list[RunInfo], limit: int | None = None) -> list[str]:
    """Each damaged run's problems, one line each; past `limit`, a line saying how many more."""
    problems = [f"{r.run_id}: {p}" for r in runs for p in r.problems]
    if limit is None or len(problems) <= limit:
        return problems
    return problems[:limit] + [f"… and {len(problems) - limit} more problem(s): `lf-tui runs` lists them all"]
