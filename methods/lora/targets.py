"""Which layers LoRA adapts: the names a model offers, and `"auto"` resolved to the architecture's default."""

from __future__ import annotations

from typing import Any, Union

Targets = Union[str, list[str]]

AUTO, ALL_LINEAR = "auto", "all-linear"
# Attention projections LoRA usually adapts, in order of preference, for model types PEFT has no default for:
# a query/value pair of separate projections, else one fused query-key-value projection.
QUERY_VALUE_PAIRS = (("q_proj", "v_proj"), ("query", "value"), ("query_proj", "value_proj"), ("q", "v"))
FUSED_QKV = ("qkv_proj", "query_key_value", "c_attn", "Wqkv", "W_pack", "qkv", "in_proj")
QUANTISED_LINEAR = ("Linear4bit", "Linear8bitLt")


def is_linear_like(module: Any) -> bool:
    """nn.Linear (and bitsandbytes' quantised ones) or transformers' Conv1D (GPT-2 style, weight transposed)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (torch.nn.Linear, Conv1D)) or type(module).__name__ in QUANTISED_LINEAR


def is_conv1d(module: Any) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, Conv1D)


def _output_head(model: Any) -> Any:
    getter = getattr(model, "get_output_embeddings", None)
    return getter() if callable(getter) else None


def adaptable_modules(model: Any) -> dict[str, list[Any]]:
    """{leaf name: modules with that name} for every linear-like layer except the output head (lm_head)."""
    head = _output_head(model)
    found: dict[str, list[Any]] = {}
    for full, module in model.named_modules():
        if not full or module is head or full.rsplit(".", 1)[-1] == "lm_head" or not is_linear_like(module):
            continue
        found.setdefault(full.rsplit(".", 1)[-1], []).append(module)
    return found


def adaptable_module_names(model: Any) -> list[str]:
    """Leaf names that target_modules may list, sorted."""
    return sorted(adaptable_modules(model))


def _regex_matches(model: Any, pattern: str) -> bool:
    import re

    return any(re.fullmatch(pattern, name) for name, _ in model.named_modules())


def auto_target_modules(model: Any) -> tuple[Targets, str]:
    """(targets, why) for target_modules "auto": PEFT's default for the model type when the model has those layers,
    else its attention query/value (or fused qkv) projections, else every linear layer."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    names = adaptable_modules(model)
    peft_default = PEFT_DEFAULTS.get(model_type) if model_type else None
    if isinstance(peft_default, str) and _regex_matches(model, peft_default):
        return peft_default, f"PEFT's default for model type {model_type!r}"
    if isinstance(peft_default, (list, tuple, set)) and peft_default and all(n in names for n in peft_default):
        return list(peft_default), f"PEFT's default for model type {model_type!r}"
    for pair in QUERY_VALUE_PAIRS:
        if all(n in names for n in pair):
            return list(pair), "the attention query/value projections"
    for fused in FUSED_QKV:
        if fused in names:
            return [fused], "the fused attention query-key-value projection"
    if names:
        return sorted(names), "every linear layer (no known attention projection names)"
    raise ValueError("the model has no linear or Conv1D layers LoRA could adapt")


def resolve(model: Any, target: Targets) -> tuple[Targets, str]:
    """`target` as PEFT should get it, and a note saying how "auto" was resolved ("" when it was not "auto")."""
    if target != AUTO:
        return target, ""
    targets, why = auto_target_modules(model)
    shown = targets if isinstance(targets, str) else ", ".join(targets)
    return targets, f'target_modules "auto" for this {type(model).__name__}: {shown} ({why})'


def all_conv1d(model: Any, targets: Targets) -> bool:
    """True when every targeted layer is a Conv1D, whose weight is stored (in, out): LoRA needs fan_in_fan_out."""
    if isinstance(targets, str):
        if targets != ALL_LINEAR:
            return False
        modules = [m for group in adaptable_modules(model).values() for m in group]
    else:
        found = adaptable_modules(model)
        modules = [m for name in targets for m in found.get(name, [])]
    return bool(modules) and all(is_conv1d(m) for m in modules)
