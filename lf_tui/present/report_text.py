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
    if not checks:
        return (f"run {report['run_id']}: its config has no benchmarks thresholds (add a benchmarks block: "
                "training_efficiency, quality_metrics, resource_metrics)")
    counts = {v: sum(c["verdict"] == v for c in checks) for v in ("pass", "fail", "not measured")}
    return (f"run {report['run_id']}: {report['verdict']} · {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['not measured']} not measured")
