"""Full fine-tuning: which layers train, and catalogue metadata."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import Field

from methods.config_models import MethodSpecific
from methods.memory_plan import Footprint
from methods.method_info import Demo, MatrixRow, MethodInfo, UseCase
from methods.model_shape import ModelShape


class FullFinetuneSpecific(MethodSpecific):
    train_layers: Optional[list[int]] = Field(
        None, description="indices of decoder layers to train; null trains all of them"
    )
    freeze_embeddings: bool = Field(False, description="keep the token embeddings frozen")
    freeze_lm_head: bool = Field(False, description="keep the output head frozen")
    freeze_patterns: list[str] = Field(
        default_factory=list, description="parameter-name substrings to freeze (e.g. 'self_attn')"
    )


def footprint(shape: ModelShape, cfg: Any) -> Footprint:
    """The base's own weights train: those of the chosen layers, the embeddings and the head unless frozen."""
    spec = cfg.method_specific
    layers = shape.num_layers if spec.train_layers is None else len(set(spec.train_layers))
    trainable = layers * (shape.block_linear_params + shape.block_other_params) + shape.hidden_size
    trainable += 0 if spec.freeze_embeddings else shape.embedding_params
    trainable += 0 if spec.freeze_lm_head else shape.head_params
    notes = ("freeze_patterns are not counted: the estimate assumes those weights train",) if spec.freeze_patterns else ()
    return Footprint(trainable_params=trainable, trains_base=True, notes=notes)


METHOD = MethodInfo(
    name="full_finetune",
    title="Full fine-tune",
    summary="Every weight trains (or the layers you choose): best quality, most memory.",
    order=3,
    matrix=MatrixRow("56GB", "Slow", "100%", False, False, "yes"),
    spec_model=FullFinetuneSpecific,
    lr_range=(1e-6, 1e-4),
    demo_learning_rate=1e-3,
    demo=Demo(learning_rate=2e-3),
    use_cases=(
        UseCase("Domain Specialization", "secondary"),
        UseCase("Maximum Quality", "primary", "Large dataset required"),
    ),
    memory=footprint,
)
