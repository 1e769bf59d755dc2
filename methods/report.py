"""The validation report: every error and warning with its JSON path, value, hint and location."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Issue:
    """One error or warning about a config."""

    path: str
    message: str
    value: Any = None
    hint: str = ""
    line: int | None = None
    column: int | None = None

    def render(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.path or '<root>'}: {self.message}{hint}{where}"


@dataclass
class Report:
    """The outcome of validating one config."""

    source: str | None = None
    method: str | None = None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    migrated_from: str | None = None
    migration_notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, path: str, message: str, value: Any = None, hint: str = "") -> None:
        self.errors.append(Issue(path, message, _jsonable(value), hint))

    def warn(self, path: str, message: str, value: Any = None, hint: str = "") -> None:
        self.warnings.append(Issue(path, message, _jsonable(value), hint))

    def place(self, positions: dict[str, tuple[int, int]], nested: bool) -> None:
        """Fill line/column of each issue from the positions of the source text."""
        for issue in self.errors + self.warnings:
            candidates = [issue.path]
            if issue.path == "method_name":
                candidates.append("method")
            if nested:
                candidates = [f"method_config.{c}" if c else "method_config" for c in candidates]
            for cand in candidates:
                probe = cand
                while probe:
                    if probe in positions:
                        issue.line, issue.column = positions[probe]
                        break
                    probe = probe.rsplit(".", 1)[0] if "." in probe else ""
                if issue.line:
                    break

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "method": self.method,
            "valid": self.ok,
            "errors": [asdict(i) for i in self.errors],
            "warnings": [asdict(i) for i in self.warnings],
            "migrated_from": self.migrated_from,
            "migration_notes": self.migration_notes,
        }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)
