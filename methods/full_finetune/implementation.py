"""Full fine-tuning: train every weight, or the chosen decoder layers; saves the whole model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_LAYER = re.compile(r"\.layers\.(\d+)\.")


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    spec = cfg.method_specific
    n_layers = getattr(model.config, "num_hidden_layers", None)
    if spec.train_layers is not None and n_layers is not None:
        bad = [i for i in spec.train_layers if not 0 <= i < n_layers]
        if bad:
            raise ctx.fail("config", f"method_specific.train_layers: {bad} out of range for a {n_layers}-layer model",
                           f"use indices 0..{n_layers - 1}")
    for name, param in model.named_parameters():
        train = True
        match = _LAYER.search(name)
        if spec.train_layers is not None:
            train = bool(match) and int(match.group(1)) in spec.train_layers
        if spec.freeze_embeddings and "embed_tokens" in name:
            train = False
        if spec.freeze_lm_head and name.startswith("lm_head"):
            train = False
        if any(p in name for p in spec.freeze_patterns):
            train = False
        param.requires_grad_(train)
    return model


def save(model: Any, folder: Path) -> None:
    model.save_pretrained(str(folder), safe_serialization=True)


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=base_model.dtype)
