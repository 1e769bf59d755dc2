"""Bottleneck adapters: parameters and catalogue metadata."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from methods.config_models import MethodSpecific
from methods.memory_plan import Footprint
from methods.method_info import Demo, MatrixRow, MethodInfo, UseCase
from methods.model_shape import ModelShape


class AdaptersSpecific(MethodSpecific):
    bottleneck_size: Optional[int] = Field(
        None, ge=1, le=16384, description="adapter hidden size; null derives it from reduction_factor"
    )
    reduction_factor: int = Field(16, ge=1, le=1024, description="hidden_size / bottleneck when no size given")
    non_linearity: Literal["relu", "gelu", "silu", "tanh"] = Field("relu", description="activation")
    placement: Literal["mlp", "attention", "both"] = Field(
        "mlp", description="after the MLP block, the attention block, or both"
    )
    adapter_dropout: float = Field(0.0, ge=0, le=1, description="dropout inside the adapter")
    init_scale: float = Field(1e-3, ge=0, le=1, description="std of the down-projection init")


def footprint(shape: ModelShape, cfg: Any) -> Footprint:
    """A down and an up projection (with biases) per placement and layer; each saves its input and hidden."""
    spec, h = cfg.method_specific, shape.hidden_size
    bottleneck = spec.bottleneck_size or max(1, h // spec.reduction_factor)
    places = 2 if spec.placement == "both" else 1
    per_layer = places * (2 * h * bottleneck + bottleneck + h)
    return Footprint(trainable_params=shape.num_layers * per_layer,
                     extra_activation_values=places * (1 + 2 * bottleneck / h))


METHOD = MethodInfo(
    name="adapters",
    title="Adapters",
    summary="Small bottleneck MLPs inserted in each block; hot-swappable per task.",
    order=4,
    matrix=MatrixRow("20GB", "Fast", "94-97%", True, True, "yes"),
    spec_model=AdaptersSpecific,
    lr_range=(1e-5, 1e-2),
    demo_learning_rate=5e-3,
    demo=Demo(learning_rate=1e-2),
    use_cases=(UseCase("Multiple Domains", "primary", "Hot-swappable setup"),),
    memory=footprint,
)
