"""Prefix tuning: parameters and catalogue metadata."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field

from methods.config_models import MethodSpecific
from methods.memory_plan import Footprint
from methods.method_info import Demo, MatrixRow, MethodInfo, UseCase
from methods.model_shape import ModelShape


class PrefixTuningSpecific(MethodSpecific):
    num_virtual_tokens: int = Field(20, ge=1, le=1024, description="prefix length in virtual tokens")
    prefix_projection: bool = Field(False, description="reparameterise the prefix through an MLP")
    encoder_hidden_size: Optional[int] = Field(
        None, ge=1, le=65536, description="hidden size of that MLP; null uses the model's hidden size"
    )


def footprint(shape: ModelShape, cfg: Any) -> Footprint:
    """PEFT's prefix: a key and a value (the key/value heads' width) per virtual token and layer (through an MLP
    when prefix_projection is on); every sequence attends to num_virtual_tokens more positions."""
    spec, h = cfg.method_specific, shape.hidden_size
    n, width = spec.num_virtual_tokens, 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim
    trainable = n * width
    if spec.prefix_projection:
        encoder = spec.encoder_hidden_size or h
        trainable = n * h + h * encoder + encoder + encoder * width + width
    return Footprint(trainable_params=trainable, extra_tokens=n)


METHOD = MethodInfo(
    name="prefix_tuning",
    title="Prefix tuning",
    summary="Trainable key/value prefixes in every layer: few parameters, the base untouched.",
    order=5,
    matrix=MatrixRow("12GB", "Very Fast", "85-92%", True, True, "partial"),
    spec_model=PrefixTuningSpecific,
    lr_range=(1e-4, 5e-2),
    demo_learning_rate=1e-2,
    demo=Demo(learning_rate=3e-2),
    use_cases=(UseCase("Rapid Prototyping", "primary", "Minimal parameters"),),
    memory=footprint,
)
