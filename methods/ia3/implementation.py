"""IA³ with PEFT: scaling vectors on the resolved keys, values and feed-forward layers; saved as a PEFT adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.contract import MethodContext, MethodImplementation
from methods.lora.implementation import upcast_trainable

from . import targets as ia3_targets

SUFFIX_HINT = 'a dotted suffix such as "mlp.c_proj" picks one of two layers with the same name'


def ia3_config(spec: Any, target_modules: list[str], feedforward_modules: list[str], fan_in_fan_out: bool) -> Any:
    """The peft.IA3Config for an IA³ method_specific section, with "auto" already resolved."""
    from peft import IA3Config

    return IA3Config(
        task_type="CAUSAL_LM",
        target_modules=target_modules,
        feedforward_modules=feedforward_modules,
        fan_in_fan_out=fan_in_fan_out,
        init_ia3_weights=spec.init_ia3_weights,
        modules_to_save=spec.modules_to_save,
    )


def resolve_targets(model: Any, spec: Any, ctx: MethodContext) -> tuple[list[str], list[str]]:
    """(target_modules, feedforward_modules) for this model: "auto" resolved and logged, names checked, and the
    feed-forward layers a subset of the targets."""
    kind = ia3_targets.model_type(model)
    try:
        targets, feedforward, note = ia3_targets.resolve(model, spec.target_modules, spec.feedforward_modules)
    except ValueError as exc:
        raise ctx.fail("config", f'method_specific.target_modules "auto": {exc} in this {kind} model',
                       f"list the layers to scale in target_modules; layers that exist: "
                       f"{', '.join(ia3_targets.existing_names(model))}") from None
    if note:
        ctx.log(note)
    unknown = ia3_targets.missing(model, targets)
    if unknown:
        raise ctx.fail("config", f"method_specific.target_modules: {unknown} not found in this {kind} model",
                       f"layers that exist: {', '.join(ia3_targets.existing_names(model))} (or \"auto\"); "
                       f"{SUFFIX_HINT}")
    extra = [name for name in feedforward if name not in targets]
    if extra:
        source = ', from "auto"' if spec.target_modules == ia3_targets.AUTO else ""
        raise ctx.fail("config", f"method_specific.feedforward_modules: {extra} not in target_modules "
                       f"({', '.join(targets)}{source})",
                       f"feedforward_modules must be a subset of target_modules: add {', '.join(extra)} to a "
                       f"target_modules list, remove {'it' if len(extra) == 1 else 'them'} from feedforward_modules, "
                       'or set feedforward_modules to "auto"')
    return targets, feedforward


def apply(model: Any, cfg: Any, ctx: MethodContext) -> Any:
    """Add IA³ vectors to the frozen base model (trainable weights in fp32 whatever the base dtype)."""
    from peft import get_peft_model

    targets, feedforward = resolve_targets(model, cfg.method_specific, ctx)
    fan_in_fan_out = ia3_targets.all_conv1d(model, targets)  # GPT-2 style Conv1D: PEFT transposes when merging
    model = get_peft_model(model, ia3_config(cfg.method_specific, targets, feedforward, fan_in_fan_out),
                           autocast_adapter_dtype=True)
    upcast_trainable(model)
    return model


def save(model: Any, folder: Path) -> None:
    """adapter_config.json + adapter_model.safetensors, loadable by peft.PeftModel.from_pretrained."""
    model.save_pretrained(str(folder), safe_serialization=True)


def load_trained(base_model: Any, folder: Path, ctx: MethodContext) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(folder))


def merge(folder: Path, dtype: Any, ctx: MethodContext) -> Any:
    """The scaling vectors folded into a plain base loaded in `dtype` (PEFT's merge_and_unload multiplies each
    scaled layer's weight rows, or columns for a feed-forward layer)."""
    return load_trained(ctx.load_base_model(dtype=dtype), folder, ctx).merge_and_unload()


class Ia3(MethodImplementation):
    """IA³ scaling vectors through PEFT (the base frozen)."""

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)
    merge = staticmethod(merge)


IMPLEMENTATION = Ia3()
