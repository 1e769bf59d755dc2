"""In-process builders for engine tests: a model built exactly as the engine builds it."""

from __future__ import annotations

from typing import Any

from engine.models import count_parameters, resolve_runtime
from engine.runner import build
from tests.conftest import make_config


def built(method: str, **method_specific: Any) -> tuple[Any, Any, Any, Any]:
    """(config, tokenizer, model, implementation) for `method` with `method_specific` overrides."""
    cfg = make_config(method, method_specific=method_specific, hardware={"mixed_precision": "no"})
    runtime = resolve_runtime(cfg)
    tokenizer, model, impl = build(cfg, runtime, lambda level, msg: None)
    return cfg, tokenizer, model, impl


def trainable(method: str, **method_specific: Any) -> int:
    return count_parameters(built(method, **method_specific)[2])[0]
