"""LoRA's footprint for the memory planner: r x (in + out) per adapted layer, DoRA's magnitudes, saved modules."""

from __future__ import annotations

from typing import Any

from methods.memory_plan import Footprint
from methods.model_shape import ModelShape, auto_lora_targets


def footprint(shape: ModelShape, cfg: Any, base_bits: float | None = None) -> Footprint:
    """What LoRA (and QLoRA, with `base_bits`) trains on `shape`; each adapted layer also saves its (dropped-out)
    input and the rank-r hidden for backward."""
    spec, h = cfg.method_specific, shape.hidden_size
    targeted = shape.targeted(spec.target_modules, auto_lora_targets(shape))
    per_layer = sum(spec.r * (t.in_features + t.out_features) for t in targeted)
    if spec.use_dora:
        per_layer += sum(t.out_features for t in targeted)  # a magnitude per output feature
    trainable = shape.num_layers * per_layer
    notes: list[str] = []
    saved = spec.modules_to_save or []
    if any("lm_head" in m for m in saved):
        trainable += shape.vocab_size * h
    if any("embed" in m or "wte" in m for m in saved):
        trainable += shape.embedding_params
    if not targeted:
        notes.append(f"target_modules {spec.target_modules!r} names no layer of a {shape.model_type} block as "
                     "the planner knows it: the adapter is not counted")
    extra = sum(t.in_features + spec.r * (2 if spec.use_dora else 1) for t in targeted) / h
    return Footprint(trainable_params=trainable, base_bits=base_bits, extra_activation_values=extra,
                     notes=tuple(notes))
