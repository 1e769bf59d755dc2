"""Config differences between runs: only the keys whose values differ (pure logic, no widgets)."""

from __future__ import annotations

from typing import Any

MISSING = "—"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'training.learning_rate': 0.0002, ...}; lists stay values."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def config_differences(configs: list[dict[str, Any] | None]) -> list[tuple[str, list[Any]]]:
    """Rows of (key, [value per config]) for keys whose values are not all equal."""
    flat = [flatten(c or {}) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = []
    for key in keys:
        values = [f.get(key, MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, values))
    return rows
