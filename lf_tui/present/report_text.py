"""The benchmark report's words: one row per threshold, a verdict mark, the same for the CLI and the screens."""

from __future__ import annotations

from typing import Any

MARKS = {"pass": "✓ pass", "fail": "✗ fail", "not measured": "– not measured", "info": "· info"}
VERDICT_MARKS = {"pass": "✓", "fail": "✗", "incomplete": "…", "no thresholds": "", "unreadable": "?"}
HEADERS = ("threshold", "limit", "measured", "result", "how / why")
GROUPS = {"training_efficiency": "training", "quality_metrics": "quality", "resource_metrics": "resources"}


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [(f"{GROUPS.get(c['group'], c['group'])} · {c['name']}", c["threshold"], c["measured"],
             MARKS.get(c["verdict"], c["verdict"]), c["why"]) for c in report["checks"]]


def headline(report: dict[str, Any]) -> str:
    checks = report["checks"]
    if not checks and report.get("problems"):
        return f"run {report['run_id']}: its benchmarks block sets no known threshold (see the problems below)"
    if not checks:
        return (f"run {report['run_id']}: its config has no benchmarks thresholds (add a benchmarks block: "
                "training_efficiency, quality_metrics, resource_metrics)")
    counts = {v: sum(c["verdict"] == v for c in checks) for v in ("pass", "fail", "not measured")}
    return (f"run {report['run_id']}: {report['verdict']} · {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['not measured']} not measured")


def problems(report: dict[str, Any]) -> list[str]:
    """The benchmarks block's problems (unknown keys: a typo'd threshold is otherwise never checked)."""
    return [f"problem: {p}" for p in report.get("problems") or []]


SHORT_MARKS = {"pass": "✓", "fail": "✗", "not measured": "–", "info": ""}


def compared(reports: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The comparison's benchmark rows: the verdict, then each threshold any run has, one cell per run
    ("3.2 s ✓ (≤ 1h)"; "—" where a run's config does not set that threshold)."""
    out: list[tuple[str, ...]] = [("verdict", *[r["verdict"] for r in reports])]
    labels: list[str] = []
    cells: list[dict[str, str]] = []
    for report in reports:
        mine = {}
        for c in report["checks"]:
            label = f"{GROUPS.get(c['group'], c['group'])} · {c['name']}"
            if label not in labels:
                labels.append(label)
            mark = SHORT_MARKS.get(c["verdict"], "")
            measured = c["measured"] if c["verdict"] != "not measured" else "not measured"
            mine[label] = f"{measured} {mark}".strip() + (f" ({c['threshold']})" if c["threshold"] != "-" else "")
        cells.append(mine)
    out += [(label, *[mine.get(label, "—") for mine in cells]) for label in labels]
    return out
