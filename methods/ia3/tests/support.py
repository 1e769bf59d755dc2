"""Helpers of the IA³ tests: the tiny architectures, a model built as the engine builds it, its IA³ layers."""

from __future__ import annotations

from typing import Any

SIZES = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", dict(SIZES, num_key_value_heads=2)),
    "qwen2": ("Qwen2Config", dict(SIZES, num_key_value_heads=2)),
    "gpt2": ("GPT2Config", dict(n_embd=64, n_layer=2, n_head=4, n_positions=256)),
    "gpt_neox": ("GPTNeoXConfig", dict(SIZES)),
    "phi3": ("Phi3Config", dict(SIZES, num_key_value_heads=2)),
    "mistral": ("MistralConfig", dict(SIZES, num_key_value_heads=2)),
    "gemma": ("GemmaConfig", dict(SIZES, num_key_value_heads=2, head_dim=8)),
}


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
