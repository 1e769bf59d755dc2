"""The stdin/stdout shape of the preview and eval engine processes: a JSON request in, one JSON result line out."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable


def read_request() -> dict[str, Any]:
    """The JSON object on stdin (the UI side writes it; a broken one is our bug, reported as such)."""
    from engine.errors import EngineError

    try:
        request = json.loads(sys.stdin.read())
    except ValueError as exc:
        raise EngineError("internal", f"the request on stdin is not JSON ({exc})", "this looks like a bug") from None
    if not isinstance(request, dict):
        raise EngineError("internal", "the request on stdin is not a JSON object", "this looks like a bug")
    return request


def load_config(document: Any) -> Any:
    """A resolved config document (validated when it was written) validated again as the runner reads a run's
    config.json: leniently (an unknown key is a warning, not an error); invalid values still raise EngineError."""
    from engine.errors import EngineError
    from methods.validation import validate_config

    resolved = validate_config({"method_config": document}, lenient=True)
    if not resolved.report.ok or resolved.config is None:
        raise EngineError("config", "; ".join(e.render() for e in resolved.report.errors))
    return resolved.config


def json_result(compute: Callable[[], dict[str, Any]], oom_hint: str) -> int:
    """Run `compute()`; library chatter goes to stderr, stdout carries only the JSON result (or the error)."""
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from engine.errors import EngineError

    try:
        result = compute()
    except EngineError as exc:
        result = {"error": exc.message, "kind": exc.kind, "hint": exc.hint}
    except Exception as exc:  # reported as JSON (out of memory included), never a traceback on the user's terminal
        oom = "out of memory" in str(exc).lower() or isinstance(exc, MemoryError)
        result = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "kind": "oom" if oom else "internal",
                  "hint": oom_hint if oom else "this looks like a bug"}
    real_stdout.write(json.dumps(result, default=str) + "\n")
    real_stdout.flush()
    return 1 if "error" in result else 0
