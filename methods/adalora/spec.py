"""AdaLoRA: its method_specific parameters, schedule rules and catalogue metadata."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal, Union

from pydantic import Field

from methods.config_models import MethodConfigBase, MethodSpecific
from methods.memory_plan import Footprint
from methods.method_info import Demo, Finding, MatrixRow, MethodInfo, UseCase
from methods.model_shape import ModelShape, auto_lora_targets


class AdaloraSpecific(MethodSpecific):
    init_r: int = Field(12, ge=1, le=256, description="starting rank of every adapted layer, before any pruning; "
                                                        "must be above target_r")
    target_r: int = Field(8, ge=1, le=256, description="average rank per layer left after pruning: the final rank "
                                                         "budget is target_r x adapted layers, shared out by importance")
    tinit_fraction: float = Field(0.1, ge=0, lt=1, description="share of the run's steps trained at init_r before "
                                                                 "pruning starts (warm-up)")
    tfinal_fraction: float = Field(0.2, ge=0, lt=1, description="share of the run's steps trained at the final ranks "
                                                                  "after the last allocation")
    deltaT: int = Field(10, ge=1, le=100000, description="steps between two rank allocations while the budget "
                                                          "shrinks (1: every step)")
    beta1: float = Field(0.85, gt=0, lt=1, description="smoothing of the importance scores (EMA factor), 0-1 exclusive")
    beta2: float = Field(0.85, gt=0, lt=1, description="smoothing of the importance uncertainty (EMA factor), 0-1 exclusive")
    orth_reg_weight: float = Field(0.5, ge=0, le=100, description="weight of the penalty keeping A and B orthogonal "
                                                                   "(SVD form); 0 turns it off")
    lora_alpha: float = Field(32, gt=0, le=4096, description="scaling numerator: the update is scaled by "
                                                              "lora_alpha / init_r")
    lora_dropout: float = Field(0.05, ge=0, le=1, description="dropout on the adapter path, 0-1")
    target_modules: Union[Literal["auto", "all-linear"], list[str]] = Field(
        "auto",
        min_length=1,
        description='layer names to adapt (Linear or Conv1D), "all-linear", or "auto": the architecture\'s default',
    )


def schedule_steps(total_steps: int, tinit_fraction: float, tfinal_fraction: float) -> tuple[int, int]:
    """(tinit, tfinal) in optimizer steps for a run of `total_steps`: the fractions rounded down, so fractions
    that add up to less than 1 always leave at least one step of pruning."""
    return math.floor(tinit_fraction * total_steps), math.floor(tfinal_fraction * total_steps)


def schedule_problem(spec: Any, total_steps: int | None) -> str:
    """Why the warm-up and final phases leave no step to prune in, "" when the schedule fits. Fractions adding up
    to less than 1 always fit (schedule_steps rounds down); the check in steps (total_steps None: not known yet)
    guards the conversion."""
    share = spec.tinit_fraction + spec.tfinal_fraction
    if share >= 1:
        return (f"tinit_fraction ({spec.tinit_fraction:g}) + tfinal_fraction ({spec.tfinal_fraction:g}) = {share:g} "
                "leaves no steps for pruning the ranks")
    if total_steps is not None:
        tinit, tfinal = schedule_steps(total_steps, spec.tinit_fraction, spec.tfinal_fraction)
        if tinit + tfinal >= total_steps:
            return (f"tinit_fraction and tfinal_fraction give {tinit} warm-up + {tfinal} final steps, "
                    f"which leaves none of the run's {total_steps} steps for pruning the ranks")
    return ""


SCHEDULE_HINT = "keep tinit_fraction + tfinal_fraction below 1 (e.g. 0.1 and 0.2) so the budget can shrink in between"


def target_below_init(cfg: MethodConfigBase) -> Iterator[Finding]:
    """AdaLoRA prunes from init_r down to target_r: a target at or above the start has nothing to prune."""
    spec: Any = cfg.method_specific
    if spec.target_r >= spec.init_r:
        yield Finding("method_specific.target_r", f"target_r ({spec.target_r}) must be below init_r ({spec.init_r})",
                      spec.target_r, "AdaLoRA prunes each layer from init_r down to an average of target_r; raise "
                      "init_r (about 1.5 x target_r is usual), or use method lora for a fixed rank", severity="error")


def schedule_fits(cfg: MethodConfigBase) -> Iterator[Finding]:
    """The warm-up and final phases must leave steps to prune in (also checked in steps when training.max_steps is
    set, as the engine checks it once the run's length is known)."""
    spec: Any = cfg.method_specific
    steps = cfg.training.max_steps if cfg.training.max_steps > 0 else None
    problem = schedule_problem(spec, steps)
    if problem:
        yield Finding("method_specific.tfinal_fraction", problem, spec.tfinal_fraction, SCHEDULE_HINT, severity="error")


def footprint(shape: ModelShape, cfg: Any) -> Footprint:
    """A, E and B at init_r on each targeted layer (pruning masks them, it does not free them); the rank allocator
    keeps three more fp32 copies of them (importance, its average and uncertainty) until the final allocation."""
    spec = cfg.method_specific
    layers = shape.targeted(spec.target_modules, auto_lora_targets(shape))
    params = shape.num_layers * sum(spec.init_r * (t.in_features + t.out_features + 1) for t in layers)
    note = (f"AdaLoRA's rank allocator keeps 3 more fp32 copies of the {params:,} adapter parameters "
            f"({3 * 4 * params / 1024 ** 2:.3g} MiB) until the final allocation")
    return Footprint(trainable_params=params, notes=(note,))


METHOD = MethodInfo(
    name="adalora",
    title="AdaLoRA",
    summary="LoRA in SVD form that prunes its ranks during training, keeping them where they matter most.",
    order=6,
    matrix=MatrixRow("17GB", "Medium", "96-99%", True, True, "yes"),
    spec_model=AdaloraSpecific,
    lr_range=(1e-5, 2e-3),
    demo_learning_rate=1e-2,
    rules=(target_below_init, schedule_fits),
    demo=Demo(learning_rate=2e-2, method_specific={"target_modules": "all-linear", "init_r": 8, "target_r": 4,
                                                   "deltaT": 1}),
    use_cases=(
        UseCase("Domain Specialization", "secondary", "AdaLoRA: ranks to the layers that need them"),
        UseCase("Maximum Quality", "secondary", "AdaLoRA at a LoRA-sized budget"),
    ),
    memory=footprint,
)
