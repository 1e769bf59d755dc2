"""QLoRA: 4-bit quantised base plus LoRA; parameters and catalogue metadata."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from methods.config_models import MethodConfigBase
from methods.lora.memory import footprint as lora_footprint
from methods.lora.spec import VARIANTS as LORA_VARIANTS
from methods.lora.spec import LoraSpecific, alpha_below_rank, variant_settings
from methods.method_info import Demo, Finding, MatrixRow, MethodInfo, UseCase


class QloraSpecific(LoraSpecific):
    load_in_4bit: bool = Field(True, description="quantise the base model to 4 bits (false: 8 bits)")
    bnb_4bit_compute_dtype: Literal["float16", "bfloat16", "float32", "auto"] = Field(
        "auto", description="dtype of the de-quantised matmuls; auto: bf16 on GPU, float32 on CPU"
    )
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type")
    bnb_4bit_use_double_quant: bool = Field(True, description="also quantise the quantisation constants")
    r: int = Field(64, ge=1, le=256, description="LoRA rank; typical 8-64")
    lora_alpha: float = Field(128, gt=0, le=4096, description="LoRA scaling numerator; usually 2 x r")


def large_model_without_checkpointing(cfg: MethodConfigBase) -> Iterator[Finding]:
    """A 13B+ base in 4 bits still keeps full activations: without gradient checkpointing they may not fit."""
    from methods.validation import model_size_billions

    size = model_size_billions(cfg.base_model)
    if size and size >= 13 and not cfg.hardware.gradient_checkpointing:
        yield Finding("hardware.gradient_checkpointing", f"QLoRA on a {size:g}B model without gradient checkpointing",
                      False, "activations may not fit; set hardware.gradient_checkpointing to true")


def quantised_base_init(cfg: MethodConfigBase) -> Iterator[Finding]:
    """PiSSA and OLoRA rewrite the base weights at init, which a 4-bit (or 8-bit) base cannot take as they are."""
    spec: Any = cfg.method_specific
    bits = "4-bit" if spec.load_in_4bit else "8-bit"
    if spec.init_lora_weights == "pissa":
        yield Finding("method_specific.init_lora_weights", f'init_lora_weights "pissa" on a {bits} base',
                      "pissa", "PEFT refuses it (\"Please initialize PiSSA under float32, float16, or bfloat16\"): "
                               'use method "lora" for PiSSA, or init_lora_weights "default" or "gaussian"',
                      severity="error")
    elif spec.init_lora_weights == "olora":
        yield Finding("method_specific.init_lora_weights", f'init_lora_weights "olora" on a {bits} base',
                      "olora", "OLoRA re-quantises the residual weights, so the model no longer starts from the base "
                               "and the saved adapter (converted for the original quantised base) does not reproduce "
                               'the trained model: use method "lora" for OLoRA, or init_lora_weights "default" or '
                               '"gaussian"', severity="error")


# the LoRA variants QLoRA takes: PiSSA and OLoRA need a full-precision base (see quantised_base_init)
VARIANTS = tuple(v for v in LORA_VARIANTS if v.options.get("init_lora_weights") not in ("pissa", "olora"))


def footprint(shape: Any, cfg: Any) -> Any:
    """LoRA's, on base linear layers packed in 4 (or 8) bits."""
    return lora_footprint(shape, cfg, base_bits=4 if cfg.method_specific.load_in_4bit else 8)


METHOD = MethodInfo(
    name="qlora",
    title="QLoRA",
    summary="LoRA on a 4-bit NF4 base model (bitsandbytes): the least memory.",
    order=2,
    matrix=MatrixRow("8GB", "Medium", "93-96%", True, True, "yes"),
    spec_model=QloraSpecific,
    lr_range=(1e-5, 1e-3),
    demo_learning_rate=3e-3,
    rules=(alpha_below_rank, variant_settings, quantised_base_init, large_model_without_checkpointing),
    demo=Demo(learning_rate=1e-2, method_specific={"target_modules": "all-linear", "r": 16, "lora_alpha": 32}),
    use_cases=(
        UseCase("General RAG Enhancement", "secondary"),
        UseCase("Memory Constrained", "primary", "4-bit quantization"),
    ),
    variants=VARIANTS,
    memory=footprint,
)
