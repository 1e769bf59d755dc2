"""LoRA: its method_specific parameters and catalogue metadata."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Optional, Union

from pydantic import Field

from methods.config_models import MethodConfigBase, MethodSpecific
from methods.method_info import Demo, Finding, MatrixRow, MethodInfo, UseCase


class LoraSpecific(MethodSpecific):
    r: int = Field(16, ge=1, le=256, description="LoRA rank; typical 8-64")
    lora_alpha: float = Field(32, gt=0, le=4096, description="LoRA scaling numerator; usually 2 x r")
    lora_dropout: float = Field(0.05, ge=0, le=1, description="dropout on the LoRA path, 0-1")
    target_modules: Union[Literal["auto", "all-linear"], list[str]] = Field(
        "auto",
        min_length=1,
        description='layer names to adapt (Linear or Conv1D), "all-linear", or "auto": the architecture\'s default',
    )
    bias: Literal["none", "all", "lora_only"] = Field("none", description="which biases train")
    modules_to_save: Optional[list[str]] = Field(None, description="extra modules trained in full and saved")
    fan_in_fan_out: bool = Field(
        False, description="weights stored in x out (Conv1D, GPT-2 style); set automatically when every target is a Conv1D"
    )


def alpha_below_rank(cfg: MethodConfigBase) -> Iterator[Finding]:
    """lora_alpha below r scales the low-rank update down."""
    spec: Any = cfg.method_specific  # a LoraSpecific (or a subclass: QLoRA's)
    if spec.lora_alpha < spec.r:
        yield Finding("method_specific.lora_alpha", f"lora_alpha ({spec.lora_alpha:g}) is less than r ({spec.r})",
                      spec.lora_alpha, "this scales the update down and may slow learning; 2 x r is usual")


METHOD = MethodInfo(
    name="lora",
    title="LoRA",
    summary="Low-rank adapters on chosen linear layers; the base stays frozen.",
    order=1,
    matrix=MatrixRow("16GB", "Fast", "95-98%", True, True, "yes"),
    spec_model=LoraSpecific,
    lr_range=(1e-5, 1e-3),
    demo_learning_rate=3e-3,
    rules=(alpha_below_rank,),
    demo=Demo(learning_rate=1e-2, method_specific={"target_modules": "all-linear"}),
    use_cases=(
        UseCase("General RAG Enhancement", "primary", "r=16, standard config"),
        UseCase("Domain Specialization", "primary", "r=32-64, all modules"),
        UseCase("Memory Constrained", "secondary"),
        UseCase("Multiple Domains", "secondary"),
        UseCase("Rapid Prototyping", "secondary"),
        UseCase("Maximum Quality", "secondary", "LoRA (r=64+)"),
    ),
)
