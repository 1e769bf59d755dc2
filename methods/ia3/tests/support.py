"""Helpers of the IA³ tests: a model built as the engine builds it, its IA³ layers."""

from __future__ import annotations

from typing import Any


def build_on(base_model: str, **method_specific: Any) -> tuple[Any, list[str]]:
    """(IA³ model, log lines) built as the engine builds it."""
    from engine.models import resolve_runtime
    from engine.runner import build
    from tests.conftest import make_config

    cfg = make_config("ia3", base_model=base_model, hardware={"mixed_precision": "no"},
                      method_specific=method_specific)
    lines: list[str] = []
    model = build(cfg, resolve_runtime(cfg), lambda level, message: lines.append(message))[1]
    return model, lines


def ia3_layers(model: Any) -> dict[str, Any]:
    """{full module name: IA³ layer} of a PEFT model."""
    from peft.tuners.ia3 import IA3Layer

    return {name: module for name, module in model.named_modules() if isinstance(module, IA3Layer)}
