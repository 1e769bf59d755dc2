"""Full fine-tuning: train every weight, or the chosen decoder layers; saves the whole model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.contract import MethodImplementation


def decoder_layer_prefix(model: Any) -> str | None:
    """Qualified name of the decoder-block list (model.layers, transformer.h, gpt_neox.layers, ...), or None."""
    from torch import nn

    n_layers = getattr(model.config, "num_hidden_layers", None)
    lists = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.ModuleList) and len(module)]
    for name, module in lists:
        if len(module) == n_layers:
            return name
    return lists[0][0] if lists else None


def _param_ids(module: Any) -> set[int]:
    return {id(p) for p in module.parameters()} if module is not None else set()


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    spec = cfg.method_specific
    n_layers = getattr(model.config, "num_hidden_layers", None)
    if spec.train_layers is not None and n_layers is not None:
        bad = [i for i in spec.train_layers if not 0 <= i < n_layers]
        if bad:
            raise ctx.fail("config", f"method_specific.train_layers: {bad} out of range for a {n_layers}-layer model",
                           f"use indices 0..{n_layers - 1}")
    prefix = decoder_layer_prefix(model)
    if spec.train_layers is not None and prefix is None:
        raise ctx.fail("config", "method_specific.train_layers: this model has no list of decoder layers",
                       "set train_layers to null to train every layer")
    embeddings = _param_ids(model.get_input_embeddings()) if spec.freeze_embeddings else set()
    head = _param_ids(model.get_output_embeddings()) if spec.freeze_lm_head else set()
    for name, param in model.named_parameters():
        train = True
        if spec.train_layers is not None and prefix is not None:  # (prefix is None was refused above)
            rest = name[len(prefix) + 1:] if name.startswith(f"{prefix}.") else ""
            index = rest.split(".", 1)[0]
            train = index.isdigit() and int(index) in spec.train_layers
        if id(param) in embeddings or id(param) in head:  # tied weights: freezing one freezes both
            train = False
        if any(p in name for p in spec.freeze_patterns):
            train = False
        param.requires_grad_(train)
    return model


def save(model: Any, folder: Path) -> None:
    model.save_pretrained(str(folder), safe_serialization=True)


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    from transformers import AutoModelForCausalLM

    # the run's own trust_remote_code: a model with custom code loads its trained weights as it trained
    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=base_model.dtype,
                                                trust_remote_code=ctx.cfg.trust_remote_code)


def merge(folder: Path, dtype: Any, ctx: Any) -> Any:
    """The trained model is plain already: `folder` (a save_pretrained model) loaded in `dtype`, no base needed."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, trust_remote_code=ctx.cfg.trust_remote_code)


class FullFinetune(MethodImplementation):
    """Trains the base model's own weights (the chosen ones) and saves the whole model."""

    trains_base_weights = True  # the base loads with fp32 master weights, or bf16 with hardware.pure_bf16 on a bf16 GPU

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)
    merge = staticmethod(merge)


IMPLEMENTATION = FullFinetune()
