"""Prefix tuning: parameters and catalogue metadata."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from methods.config_models import MethodSpecific
from methods.method_info import Demo, MatrixRow, MethodInfo, UseCase


class PrefixTuningSpecific(MethodSpecific):
    num_virtual_tokens: int = Field(20, ge=1, le=1024, description="prefix length in virtual tokens")
    prefix_projection: bool = Field(False, description="reparameterise the prefix through an MLP")
    encoder_hidden_size: Optional[int] = Field(
        None, ge=1, le=65536, description="hidden size of that MLP; null uses the model's hidden size"
    )


METHOD = MethodInfo(
    name="prefix_tuning",
    title="Prefix tuning",
    summary="Trainable key/value prefixes in every layer: the fewest parameters.",
    order=5,
    matrix=MatrixRow("12GB", "Very Fast", "85-92%", True, True, "partial"),
    spec_model=PrefixTuningSpecific,
    lr_range=(1e-4, 5e-2),
    demo_learning_rate=1e-2,
    demo=Demo(learning_rate=3e-2),
    use_cases=(UseCase("Rapid Prototyping", "primary", "Minimal parameters"),),
)
