"""LoRA with PEFT: wrap the base model, save the adapter, load it back for inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.contract import MethodImplementation

from . import targets as lora_targets


def lora_config(spec: Any, target_modules: Any = None, fan_in_fan_out: bool | None = None) -> Any:
    """The peft.LoraConfig for a LoRA (or QLoRA) method_specific section, with "auto" already resolved."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=spec.target_modules if target_modules is None else target_modules,
        bias=spec.bias,
        modules_to_save=spec.modules_to_save,
        fan_in_fan_out=spec.fan_in_fan_out if fan_in_fan_out is None else fan_in_fan_out,
        task_type="CAUSAL_LM",
    )


def resolve_targets(model: Any, spec: Any, ctx: Any) -> tuple[Any, bool]:
    """(target_modules, fan_in_fan_out) for this model: "auto" resolved and logged, names checked."""
    targets, note = lora_targets.resolve(model, spec.target_modules)
    if note:
        ctx.log(note)
    ctx.check_target_modules(model, targets)
    fan_in_fan_out = spec.fan_in_fan_out
    if not fan_in_fan_out and lora_targets.all_conv1d(model, targets):
        fan_in_fan_out = True
        ctx.log("the targeted layers are Conv1D (weights stored in x out): fan_in_fan_out set to true")
    return targets, fan_in_fan_out


def upcast_trainable(model: Any) -> int:
    """Put trainable fp16/bf16 parameters (modules_to_save copies, trained biases of a half-precision base) in fp32
    so the optimizer keeps fp32 weights; PEFT already does this for the LoRA matrices. Returns how many moved."""
    import torch

    moved = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.float16, torch.bfloat16):
            param.data = param.data.float()
            moved += 1
    return moved


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    """Add LoRA adapters to the frozen base model (trainable weights in fp32 whatever the base dtype)."""
    from peft import get_peft_model

    targets, fan_in_fan_out = resolve_targets(model, cfg.method_specific, ctx)
    model = get_peft_model(model, lora_config(cfg.method_specific, targets, fan_in_fan_out),
                           autocast_adapter_dtype=True)
    upcast_trainable(model)
    return model


def save(model: Any, folder: Path) -> None:
    """adapter_config.json + adapter_model.safetensors, loadable by peft.PeftModel.from_pretrained."""
    model.save_pretrained(str(folder), safe_serialization=True)


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(folder))


class Lora(MethodImplementation):
    """LoRA adapters through PEFT (the base frozen)."""

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)


IMPLEMENTATION = Lora()
