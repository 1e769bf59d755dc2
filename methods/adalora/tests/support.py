"""Helpers of the AdaLoRA tests: a config whose schedule fits a short run, and an in-process engine Trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import make_config

BUILTIN = "builtin:tiny-llama"
# a schedule that fits in 10 steps: 2 warm-up steps at rank 6, pruning at every step 3-6, the final allocation at
# step 7, then 3 steps at the final ranks (an average of 2 per layer)
SCHEDULE = {"init_r": 6, "target_r": 2, "tinit_fraction": 0.2, "tfinal_fraction": 0.3, "deltaT": 1}
STEPS = 10


def adalora_config(base_model: str = BUILTIN, steps: int = STEPS, **method_specific: Any) -> Any:
    return make_config("adalora", base_model=base_model, hardware={"mixed_precision": "no"}, data={"eval_split": 0},
                       training={"max_steps": steps, "learning_rate": 1e-2, "lr_scheduler": "constant",
                                 "batch_size": 2, "max_seq_length": 64},
                       method_specific={**SCHEDULE, **method_specific})


def make_trainer(folder: Path, cfg: Any, control: Any = None, events: list | None = None) -> Any:
    """An engine Trainer in this process, the model built as the runner builds it (the planned steps known)."""
    from engine.control import Control
    from engine.models import resolve_runtime
    from engine.optim import planned_steps
    from engine.runner import build
    from engine.trainer import Trainer
    from tests.test_training_maths import uneven_examples

    examples = uneven_examples(8)
    runtime = resolve_runtime(cfg)
    tokenizer, model, impl = build(cfg, runtime, lambda level, message: None, planned_steps(len(examples), cfg.training))
    emit = events.append if events is not None else (lambda event: None)
    return Trainer(model, impl, cfg, runtime, examples, [], tokenizer.pad_token_id, "padded", emit,
                   control or Control(), folder / "checkpoints", lambda values, step: None)
