"""Helpers for the LoRA variant tests: configs, models built as the engine builds them, short in-process training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.conftest import make_config

IDS = torch.tensor([[1, 20, 30, 40, 50, 60, 7]])


def config(method: str, base_model: str = "builtin:tiny-llama", training: dict[str, Any] | None = None,
           monitoring: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
           **method_specific: Any) -> Any:
    return make_config(method, base_model=base_model, hardware={"mixed_precision": "no"},
                       training={"max_steps": 4, "batch_size": 2, "max_seq_length": 64, **(training or {})},
                       monitoring=monitoring or {}, data=data or {}, method_specific={"lora_dropout": 0.0, **method_specific})


def build(cfg: Any) -> tuple[Any, Any]:
    """(adapted model, implementation), built as the engine builds them."""
    from engine.models import resolve_runtime
    from engine.runner import build_model

    return build_model(cfg, resolve_runtime(cfg), lambda level, message: None)


def base_model(cfg: Any) -> Any:
    """A fresh base model as the method loads it (QLoRA: quantised), untouched by any adapter."""
    from engine.models import resolve_runtime
    from engine.runner import EngineContext

    impl = _impl(cfg)
    return impl.load_model(cfg, EngineContext(cfg, resolve_runtime(cfg), lambda level, message: None))


def _impl(cfg: Any) -> Any:
    from methods.catalogue import get_catalogue

    return get_catalogue().get(cfg.method_name).implementation()


def train_steps(model: Any, impl: Any, cfg: Any, steps: int = 3) -> Any:
    """A few real optimizer steps (the engine's optimizer and schedule) on IDS; returns the optimizer."""
    from engine.optim import build_optimizer, build_scheduler

    optimizer = build_optimizer(model, cfg.training, impl, cfg)
    scheduler = build_scheduler(optimizer, cfg.training, steps)
    model.train()
    for _ in range(steps):
        model(IDS, labels=IDS).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return optimizer


@torch.no_grad()
def logits(model: Any) -> torch.Tensor:
    model.eval()
    return model(IDS).logits.float()


def stock_reload(cfg: Any, folder: Path) -> Any:
    """The saved adapter on a fresh original base, through stock PEFT."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model(cfg), str(folder))
