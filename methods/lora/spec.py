"""LoRA: its method_specific parameters and catalogue metadata."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal, Optional, Union

from pydantic import Field

from methods.config_models import MethodConfigBase, MethodSpecific
from methods.lora.memory import footprint
from methods.method_info import Demo, Finding, MatrixRow, MethodInfo, UseCase, Variant

InitLoraWeights = Literal["default", "gaussian", "pissa", "olora"]
MUTATES_BASE = ("pissa", "olora")  # initialisations that move part of the base weight into the adapter


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
    use_dora: bool = Field(
        False, description="DoRA: also learn each output's magnitude apart from its direction; often better at low r, "
                           "but slower (about 1.5-2x) and more memory"
    )
    use_rslora: bool = Field(
        False, description="rank-stabilised LoRA: scale the update by lora_alpha / sqrt(r) instead of lora_alpha / r, "
                           "so high ranks (r >= 32) keep learning"
    )
    init_lora_weights: InitLoraWeights = Field(
        "default", description='how A and B start: "default" (A random, B zero), "gaussian" (A normal with std 1/r), '
                               '"pissa" (the weight\'s top-r singular vectors) or "olora" (a QR decomposition of the '
                               'weight); pissa and olora move that part out of the frozen weight, and the saved '
                               'adapter is converted back for the original base (rank 2 x r)'
    )
    pissa_niter: Optional[int] = Field(
        None, ge=1, le=64, description='PiSSA only: null for the exact SVD; N for a fast randomised SVD with N '
                                       'subspace iterations (4-16; for large models, where the exact one takes minutes)'
    )
    loraplus_lr_ratio: Optional[float] = Field(
        None, ge=0, le=1024, description="LoRA+: lora_B (and 1-D parameters such as DoRA magnitudes) learn this many "
                                         "times faster than lora_A, which keeps learning_rate; 16 is typical (then "
                                         "halve learning_rate); null or 0: off"
    )
    loraplus_lr_embedding: Optional[float] = Field(
        None, gt=0, le=1, description="LoRA+: learning rate of LoRA on embedding layers (only when target_modules "
                                      "adapts one); null: PEFT's 1e-6"
    )


def alpha_below_rank(cfg: MethodConfigBase) -> Iterator[Finding]:
    """lora_alpha below r (below sqrt(r) with rsLoRA) scales the low-rank update down."""
    spec: Any = cfg.method_specific  # a LoraSpecific (or a subclass: QLoRA's)
    if spec.use_rslora:
        if spec.lora_alpha < math.sqrt(spec.r):
            yield Finding("method_specific.lora_alpha",
                          f"lora_alpha ({spec.lora_alpha:g}) is less than sqrt(r) ({math.sqrt(spec.r):.3g})",
                          spec.lora_alpha, "with use_rslora the update is scaled by lora_alpha / sqrt(r): below 1 it "
                                           "is scaled down and may learn slowly")
    elif spec.lora_alpha < spec.r:
        yield Finding("method_specific.lora_alpha", f"lora_alpha ({spec.lora_alpha:g}) is less than r ({spec.r})",
                      spec.lora_alpha, "this scales the update down and may slow learning; 2 x r is usual")


def variant_settings(cfg: MethodConfigBase) -> Iterator[Finding]:
    """Combinations of the LoRA variants that PEFT refuses or that would save a wrong adapter."""
    spec: Any = cfg.method_specific
    init = spec.init_lora_weights
    if init in MUTATES_BASE and spec.bias != "none":
        yield Finding("method_specific.bias", f'init_lora_weights "{init}" with bias "{spec.bias}"', spec.bias,
                      f'{init} changes the base weights, so the saved adapter is converted for the original base; '
                      'PEFT cannot convert one with trained biases ("only 1 adapter with bias"): set bias to "none" '
                      'or use another init_lora_weights', severity="error")
    if init == "olora" and spec.fan_in_fan_out:
        yield Finding("method_specific.init_lora_weights", 'init_lora_weights "olora" with fan_in_fan_out', init,
                      "PEFT's OLoRA init ignores fan_in_fan_out, so Conv1D layers (GPT-2 style) get adapters of the "
                      'wrong shape: use "pissa" (it handles Conv1D) or target Linear layers', severity="error")
    if spec.pissa_niter is not None and init != "pissa":
        yield Finding("method_specific.pissa_niter", f'pissa_niter is ignored with init_lora_weights "{init}"',
                      spec.pissa_niter, 'it applies to init_lora_weights "pissa" only; remove it')
    ratio = spec.loraplus_lr_ratio
    if ratio is not None and 0 < ratio < 1:
        yield Finding("method_specific.loraplus_lr_ratio", f"loraplus_lr_ratio {ratio:g} is below 1", ratio,
                      "LoRA+ trains lora_B faster than lora_A: use a ratio >= 1 (16 is typical), or null/0 for off",
                      severity="error")
    if spec.loraplus_lr_embedding is not None and not ratio:
        yield Finding("method_specific.loraplus_lr_embedding", "loraplus_lr_embedding is ignored without LoRA+",
                      spec.loraplus_lr_embedding, "set loraplus_lr_ratio (16 is typical) or remove it")


VARIANTS = (
    Variant("DoRA", {"use_dora": True}, "weight-decomposed LoRA: learns each output's magnitude and direction "
                                        "apart; closer to full fine-tuning at low r, about 1.5-2x slower"),
    Variant("rsLoRA", {"use_rslora": True}, "scales the update by alpha / sqrt(r): high ranks keep learning"),
    Variant("PiSSA", {"init_lora_weights": "pissa"}, "A and B start from the weight's top singular vectors (the "
                                                     "rest stays frozen): converges faster than zero-init"),
    Variant("OLoRA", {"init_lora_weights": "olora"}, "A and B start from a QR decomposition of the weight: "
                                                     "orthonormal B, faster convergence"),
    Variant("LoRA+", {"loraplus_lr_ratio": 16}, "lora_B learns 16x faster than lora_A: faster convergence, "
                                                "same cost"),
    Variant("Gaussian init", {"init_lora_weights": "gaussian"}, "A starts normal with std 1/r instead of "
                                                                "Kaiming-uniform; B still zero"),
)


METHOD = MethodInfo(
    name="lora",
    title="LoRA",
    summary="Low-rank adapters on chosen linear layers; the base stays frozen.",
    order=1,
    matrix=MatrixRow("16GB", "Fast", "95-98%", True, True, "yes"),
    spec_model=LoraSpecific,
    lr_range=(1e-5, 1e-3),
    demo_learning_rate=3e-3,
    rules=(alpha_below_rank, variant_settings),
    demo=Demo(learning_rate=1e-2, method_specific={"target_modules": "all-linear"}),
    use_cases=(
        UseCase("General RAG Enhancement", "primary", "r=16, standard config"),
        UseCase("Domain Specialization", "primary", "r=32-64, all modules"),
        UseCase("Memory Constrained", "secondary"),
        UseCase("Multiple Domains", "secondary"),
        UseCase("Rapid Prototyping", "secondary"),
        UseCase("Maximum Quality", "secondary", "LoRA (r=64+)"),
    ),
    variants=VARIANTS,
    memory=footprint,
)
