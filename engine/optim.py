"""Optimizer, learning-rate schedule and step counts of a run, built from its training section."""

from __future__ import annotations

import math
from typing import Any

import torch


def build_optimizer(model: Any, training: Any) -> torch.optim.Optimizer:
    """AdamW (default), SGD with momentum or Adafactor; no weight decay on norms and biases."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name or name.endswith("bias") else decay).append(param)
    groups = [{"params": decay, "weight_decay": training.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if training.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=training.learning_rate, momentum=0.9)
    if training.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=training.learning_rate, relative_step=False, scale_parameter=False)
    return torch.optim.AdamW(groups, lr=training.learning_rate)


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


def steps_per_epoch(n_examples: int, batch_size: int, accumulation: int) -> int:
    return max(1, math.ceil(math.ceil(n_examples / batch_size) / accumulation))
