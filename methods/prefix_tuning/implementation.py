"""Prefix tuning with PEFT, plus generation that really uses the trained prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.contract import MethodImplementation


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    from peft import PrefixTuningConfig, get_peft_model

    spec = cfg.method_specific
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=spec.num_virtual_tokens,
                                prefix_projection=spec.prefix_projection,
                                encoder_hidden_size=spec.encoder_hidden_size or model.config.hidden_size)
    return get_peft_model(model, config)


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

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)
    generate = staticmethod(generate)


IMPLEMENTATION = PrefixTuning()
