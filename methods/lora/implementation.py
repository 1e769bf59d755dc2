"""LoRA with PEFT: wrap the base model, save the adapter, load it back for inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def lora_config(spec: Any) -> Any:
    """The peft.LoraConfig for a LoRA (or QLoRA) method_specific section."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=spec.target_modules,
        bias=spec.bias,
        modules_to_save=spec.modules_to_save,
        fan_in_fan_out=spec.fan_in_fan_out,
        task_type="CAUSAL_LM",
    )


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    """Add LoRA adapters to the frozen base model."""
    from peft import get_peft_model

    ctx.check_target_modules(model, cfg.method_specific.target_modules)
    return get_peft_model(model, lora_config(cfg.method_specific))


def save(model: Any, folder: Path) -> None:
    """adapter_config.json + adapter_model.safetensors, loadable by peft.PeftModel.from_pretrained."""
    model.save_pretrained(str(folder), safe_serialization=True)


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(folder))
