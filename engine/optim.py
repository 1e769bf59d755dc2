"""Optimizer, learning-rate schedule and step counts of a run, built from its training section."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch


def optimizer_class(training: Any) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The optimizer class training.optimizer names and its keyword arguments (lr, weight_decay, its settings)."""
    kwargs: dict[str, Any] = {"lr": training.learning_rate, "weight_decay": training.weight_decay}
    if training.optimizer == "sgd":
        return torch.optim.SGD, {**kwargs, "momentum": 0.9}
    if training.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor, {**kwargs, "relative_step": False, "scale_parameter": False}
    if training.optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        try:
            import bitsandbytes.optim as bnb_optim
        except ImportError:
            from engine.errors import EngineError

            raise EngineError("unsupported_hardware", f"training.optimizer {training.optimizer} needs bitsandbytes",
                              "pip install bitsandbytes, or use optimizer adamw") from None
        paged = training.optimizer.startswith("paged")
        return (bnb_optim.PagedAdamW8bit if paged else bnb_optim.AdamW8bit), kwargs
    return torch.optim.AdamW, kwargs


def build_optimizer(model: Any, training: Any, impl: Any = None, cfg: Any = None) -> torch.optim.Optimizer:
    """The method's optimizer when it builds one (impl.build_optimizer), else AdamW (default), SGD with momentum
    or Adafactor over the trainable parameters, with no weight decay on norms and biases."""
    cls, kwargs = optimizer_class(training)
    if impl is not None:
        own = impl.build_optimizer(model, cfg, cls, **kwargs)
        if own is not None:
            return own
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name or name.endswith("bias") else decay).append(param)
    weight_decay = kwargs.pop("weight_decay")
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return cls(groups, **kwargs)


def scheduler_name(training: Any) -> str:
    """The transformers schedule to build: `constant` with warm-up steps is `constant_with_warmup`.

    transformers' plain `constant` ignores num_warmup_steps, which would silently drop the warm-up asked for.
    """
    if training.lr_scheduler == "constant" and training.warmup_steps > 0:
        return "constant_with_warmup"
    return training.lr_scheduler


def build_scheduler(optimizer: torch.optim.Optimizer, training: Any, total_steps: int) -> Any:
    from transformers import get_scheduler

    return get_scheduler(scheduler_name(training), optimizer, num_warmup_steps=training.warmup_steps,
                         num_training_steps=total_steps)


def planned_steps(n_examples: int, training: Any) -> int:
    """The optimizer steps a run takes: training.max_steps when set, else epochs x steps per epoch."""
    if training.max_steps > 0:
        return int(training.max_steps)
    return steps_per_epoch(n_examples, training.batch_size, training.gradient_accumulation_steps) * training.epochs


def steps_per_epoch(n_examples: int, batch_size: int, accumulation: int) -> int:
    return max(1, math.ceil(math.ceil(n_examples / batch_size) / accumulation))


def optimizer_step(optimizer: Any, scheduler: Any, scaler: Any, clip: Callable[[], Any],
                   check_norm: Callable[[float], None]) -> tuple[float, bool]:
    """Unscale (fp16), clip and step; returns (the gradient norm, whether the update was skipped).

    With loss scaling, a step whose scaled gradients overflowed is skipped by the scaler and the schedule does not
    advance either (as in transformers' Trainer); without it a non-finite norm is divergence (`check_norm` raises).
    """
    if scaler:
        scaler.unscale_(optimizer)
    norm = float(clip())
    skipped = False
    if scaler:
        scale = scaler.get_scale()
        scaler.step(optimizer)  # skips the update when the scaled gradients overflowed
        scaler.update()
        skipped = scaler.get_scale() < scale  # the scale backs off exactly when the step was skipped
    else:
        check_norm(norm)
        optimizer.step()
    if not skipped:
        scheduler.step()
    return norm, skipped
