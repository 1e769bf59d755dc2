"""Prefix tuning with PEFT, plus generation that really uses the trained prefix, and gradient checkpointing.

Gradient checkpointing: PEFT refuses prefix tuning on a model whose layers transformers checkpoints (transformers'
checkpointed layers drop the cache, and the prefix *is* the cache PEFT passes the base model). So the class sets
`handles_gradient_checkpointing` and apply() checkpoints the decoder layers itself, after get_peft_model, with
transformers' own checkpointing left off: each decoder layer's forward runs under torch.utils.checkpoint
(non-reentrant) with the cache kept. A layer's attention appends the sequence's keys/values to its cache entry in
place, so before every run of the layer (the forward and the backward's recompute) its entry is put back as it was
before the forward reached the layer: just the prefix. Only in training mode with gradients enabled; evaluation and
generation run the layers as they are, cache included.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from methods.contract import MethodImplementation

CACHE_INDEX = "_lf_prefix_cache_index"  # the attribute a checkpointed layer keeps its cache entry's index in


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    from peft import PrefixTuningConfig, get_peft_model

    spec = cfg.method_specific
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=spec.num_virtual_tokens,
                                prefix_projection=spec.prefix_projection,
                                encoder_hidden_size=spec.encoder_hidden_size or model.config.hidden_size)
    peft_model = get_peft_model(model, config)  # before checkpointing: PEFT checks the base has none
    if cfg.hardware.gradient_checkpointing:
        layers = checkpoint_layers(peft_model.get_base_model())
        if not layers:
            raise ctx.fail("config", "gradient checkpointing found no decoder layers to checkpoint in this model",
                           "set hardware.gradient_checkpointing to false")
        ctx.log(f"gradient checkpointing: {len(layers)} decoder layers, the prefix cache kept")
    return peft_model


def decoder_layers(model: Any) -> list[Any]:
    """The model's decoder layers: the outermost of transformers' checkpointable layers, in order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    def outermost(module: Any) -> list[Any]:
        found: list[Any] = []
        for child in module.children():
            found += [child] if isinstance(child, GradientCheckpointingLayer) else outermost(child)
        return found

    return outermost(model)


def checkpoint_layers(model: Any) -> list[Any]:
    """Run each decoder layer of `model` (the base model) checkpointed in training; returns the layers."""
    layers = decoder_layers(model)
    for position, layer in enumerate(layers):
        # the cache entry the layer's attention writes: its layer_idx (position in the list when none says)
        index = next((m.layer_idx for m in layer.modules() if isinstance(getattr(m, "layer_idx", None), int)),
                     position)
        setattr(layer, CACHE_INDEX, index)
        # an instance forward (what nn.Module.__call__ runs), bound so that copy.deepcopy rebinds it to the copy
        layer.forward = types.MethodType(_checkpointed_forward, layer)
    return layers


def is_checkpointed(layer: Any) -> bool:
    return hasattr(layer, CACHE_INDEX)


def _checkpointed_forward(self: Any, *args: Any, **kwargs: Any) -> Any:
    """A decoder layer's forward under torch.utils.checkpoint, its cache entry reset before each run."""
    import torch
    from torch.utils.checkpoint import checkpoint
    from transformers.cache_utils import Cache

    forward = type(self).forward.__get__(self)  # the class's forward (transformers' checkpointing stays off)
    if not (self.training and torch.is_grad_enabled()):  # no backward to recompute for: the cache as it is
        return forward(*args, **kwargs)
    cache = next((a for a in (*args, *kwargs.values()) if isinstance(a, Cache)), None)
    restore = _entry_restorer(cache, getattr(self, CACHE_INDEX))

    def run(*run_args: Any, **run_kwargs: Any) -> Any:
        restore()  # the forward and the recompute each append this sequence's keys/values to the prefix once
        return forward(*run_args, **run_kwargs)

    return checkpoint(run, *args, use_reentrant=False, **kwargs)


def _entry_restorer(cache: Any, index: int) -> Any:
    """A function that puts the cache's entry `index` back as it is now (before the layer ran: the prefix)."""
    layers = getattr(cache, "layers", None)
    if not isinstance(layers, list):
        return lambda: None
    if index >= len(layers):  # no entry yet (the cache appends one on the layer's first update): an empty one
        def emptied() -> None:
            if index < len(layers):
                layers[index].reset()
        return emptied
    entry = layers[index]
    state = dict(entry.__dict__)  # the prefix's keys and values (update() replaces them, it does not write in them)

    def restored() -> None:
        entry.__dict__.clear()
        entry.__dict__.update(state)
    return restored


def save(model: Any, folder: Path) -> None:
    model.save_pretrained(str(folder), safe_serialization=True)


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(folder))


def prefix_cache(model: Any, batch_size: int) -> Any:
    """The trained prefix as a transformers cache (what PeftModel.forward feeds the base model)."""
    return model.get_prompt(batch_size=batch_size)


def generate(model: Any, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """Greedy generation through the base model with the prefix cache as its past.

    PEFT 0.21's PeftModel.generate on transformers 5 drops the prefix (both `past_key_values` and a fresh
    cache are set and the empty one wins), so we hand the base model the prefix cache ourselves.
    """
    import torch

    n_virtual = model.peft_config[model.active_adapter].num_virtual_tokens
    batch = input_ids.shape[0]
    prefix_mask = torch.ones(batch, n_virtual, dtype=attention_mask.dtype, device=attention_mask.device)
    base = model.get_base_model()
    return base.generate(input_ids=input_ids, attention_mask=torch.cat([prefix_mask, attention_mask], dim=1),
                         cache=prefix_cache(model, batch), **kwargs)


class PrefixTuning(MethodImplementation):
    """Prefix tuning through PEFT, generating through the base model with the trained prefix as its cache."""

    handles_gradient_checkpointing = True  # apply() checkpoints the decoder layers, keeping the prefix cache
    merge_refusal = ("a prefix is extra attention keys and values every sequence attends to, not a change to any "
                     "weight: it cannot be folded into the base model")

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)
    generate = staticmethod(generate)


IMPLEMENTATION = PrefixTuning()
