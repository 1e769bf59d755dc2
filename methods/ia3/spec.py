"""IA³: its method_specific parameters and catalogue metadata."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Optional, Union

from pydantic import Field

from methods.config_models import MethodConfigBase, MethodSpecific
from methods.memory_plan import Footprint
from methods.method_info import Demo, Finding, MatrixRow, MethodInfo, UseCase
from methods.model_shape import Linear, ModelShape

from .targets import FUSED_QKV, KEY_VALUE_PAIRS


class Ia3Specific(MethodSpecific):
    target_modules: Union[Literal["auto"], list[str]] = Field(
        "auto",
        min_length=1,
        description='layers that get an IA³ scaling vector (Linear or Conv1D; a name or a dotted suffix such as '
                    '"mlp.c_proj"), or "auto": the attention keys and values and the feed-forward down projection',
    )
    feedforward_modules: Union[Literal["auto"], list[str]] = Field(
        "auto",
        description='which of target_modules are feed-forward layers (their input is scaled, not their output); '
                    'must be names listed in target_modules; "auto": the targets that project the feed-forward '
                    "activation back down (down_proj, fc2, dense_4h_to_h, mlp.c_proj)",
    )
    init_ia3_weights: bool = Field(
        True, description="start every scaling vector at 1.0, so training starts from the base model exactly; "
                          "false draws them at random, which scrambles the base: for experiments only"
    )
    modules_to_save: Optional[list[str]] = Field(
        None, description="extra modules trained in full and saved with the vectors (e.g. a new head); null: none"
    )


def feedforward_not_in_targets(cfg: MethodConfigBase) -> Iterator[Finding]:
    """feedforward_modules must name layers that target_modules adapts (PEFT's IA3Config requires a subset)."""
    spec: Any = cfg.method_specific
    if not isinstance(spec.feedforward_modules, list) or not isinstance(spec.target_modules, list):
        return
    extra = [name for name in spec.feedforward_modules if name not in spec.target_modules]
    if extra:
        yield Finding("method_specific.feedforward_modules",
                      f"{extra} {'is' if len(extra) == 1 else 'are'} not in target_modules {spec.target_modules}",
                      spec.feedforward_modules,
                      f"add {', '.join(extra)} to target_modules, remove {'it' if len(extra) == 1 else 'them'} from "
                      'feedforward_modules, or set feedforward_modules to "auto"', severity="error")


def auto_on_shape(shape: ModelShape) -> tuple[list[str], list[str]]:
    """What "auto" scales on a block of this shape (as targets.auto_targets does on a loaded model)."""
    names = [linear.name for linear in shape.linears]
    attention = next((list(pair) for pair in KEY_VALUE_PAIRS if all(n in names for n in pair)), None)
    attention = attention or next(([n] for n in FUSED_QKV if n in names), [])
    feedforward = [linear.name for linear in shape.linears
                   if linear.feed_forward and linear.in_features > linear.out_features]
    return attention + feedforward, feedforward


def footprint(shape: ModelShape, cfg: Any) -> Footprint:
    """One vector per targeted layer and block: the output width, the input width for a feed-forward layer; each
    scaling saves the tensor it scales for backward."""
    spec = cfg.method_specific
    layers = shape.targeted(spec.target_modules, auto_on_shape(shape)[0])
    feedforward: list[Linear] = (
        [t for t in layers if t.feed_forward and t.in_features > t.out_features]  # the down projection(s)
        if spec.feedforward_modules == "auto" else shape.targeted(spec.feedforward_modules, []))
    widths = [t.in_features if t in feedforward else t.out_features for t in layers]
    return Footprint(trainable_params=shape.num_layers * sum(widths),
                     extra_activation_values=sum(widths) / shape.hidden_size)


METHOD = MethodInfo(
    name="ia3",
    title="IA³",
    summary="Learned scaling vectors on keys, values and feed-forward: ~0.01% of the parameters.",
    order=7,
    matrix=MatrixRow("16GB", "Very Fast", "90-95%", True, True, "partial"),
    spec_model=Ia3Specific,
    lr_range=(1e-3, 1e-2),
    demo_learning_rate=1e-2,
    rules=(feedforward_not_in_targets,),
    demo=Demo(learning_rate=3e-2),
    use_cases=(
        UseCase("Multiple Domains", "secondary"),
        UseCase("Memory Constrained", "secondary"),
        UseCase("Rapid Prototyping", "secondary"),
    ),
    memory=footprint,
)
