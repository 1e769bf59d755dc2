"""The config editor's logic without widgets: parse, validate, locate issues, set fields in the JSON text."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from methods.config_file import ConfigInputError, parse_config_text
from methods.report import Issue, Report
from methods.validation import Resolved, validate_config


@dataclass
class EditorCheck:
    """Result of validating the editor's text."""

    resolved: Resolved | None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.resolved is not None and not self.errors

    @property
    def global_batch_line(self) -> str:
        """A valid config's examples per optimizer step, as a line for the verdict ("" when invalid, or when it is
        just training.batch_size: one process, no accumulation)."""
        if not self.ok or self.resolved is None or self.resolved.config is None:
            return ""
        if " x " not in global_batch_text(self.resolved.config):
            return ""
        return "\n" + global_batch_text(self.resolved.config)


def global_batch_text(config: Any) -> str:
    """`global batch 16 (4 x 2 processes x 2 accumulation)`: batch per process x processes x accumulation."""
    from methods.distributed_rules import global_batch, world_of

    t, world = config.training, world_of(config)
    parts = [str(t.batch_size)] + [f"{world.size} processes"] * (world.size > 1)
    parts += [f"{t.gradient_accumulation_steps} accumulation"] * (t.gradient_accumulation_steps > 1)
    return f"global batch {global_batch(config)[0]}" + (f" ({' x '.join(parts)})" if len(parts) > 1 else "")


def check_text(text: str, method: str | None, source: str = "<editor>") -> EditorCheck:
    """Validate editor text; a JSON syntax error becomes one error with its line and column."""
    try:
        document = parse_config_text(text, source)
    except ConfigInputError as exc:
        message = str(exc).split(": ", 1)[-1]
        line = col = None
        if "line " in message:
            try:
                parts = message.split("line ", 1)[1].split()
                line, col = int(parts[0]), int(parts[2].rstrip(":"))
            except (IndexError, ValueError):
                pass
        return EditorCheck(None, [Issue("", message, hint="fix the JSON syntax", line=line, column=col)])
    resolved = validate_config(document, method=None if _names_method(document) else method, text=text,
                               source=source)
    report: Report = resolved.report
    return EditorCheck(resolved, list(report.errors), list(report.warnings))


def _names_method(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    inner = document.get("method_config", document)
    return isinstance(inner, dict) and bool(inner.get("method") or inner.get("method_name"))


def set_field(text: str, key: str, value: Any) -> str:
    """Set a top-level method_config field (e.g. base_model) in either shape; raises ValueError on bad JSON."""
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("the config is not a JSON object")
    target = document["method_config"] if isinstance(document.get("method_config"), dict) else document
    target[key] = value
    return json.dumps(document, indent=2) + "\n"


def get_field(text: str, key: str) -> Any:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    target = document["method_config"] if isinstance(document.get("method_config"), dict) else document
    return target.get(key)
