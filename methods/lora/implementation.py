"""LoRA with PEFT: wrap the base model, save the adapter, load it back for inference.

The variants are PEFT's own: DoRA (use_dora), rsLoRA (use_rslora), the initialisations (init_lora_weights: gaussian,
PiSSA, OLoRA) and LoRA+ (create_loraplus_optimizer, in build_optimizer). PiSSA and OLoRA move the adapter's starting
point out of the base weights (the residual), so apply() keeps the initial adapter and save() converts the trained
one into a plain LoRA adapter (rank 2r) for the original base, as PEFT's save_pretrained does with
path_initial_model_for_weight_conversion; checkpoints resume exactly because apply() rebuilds the same residual (the
engine seeds torch before it) and the trainable A and B are restored by name.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from methods.contract import MethodImplementation

from . import targets as lora_targets

MUTATES_BASE = ("pissa", "olora")  # init_lora_weights that subtract the initial adapter from the base weights
INITIAL_ADAPTER = "_lf_tui_initial_adapter"  # attribute of the PEFT model: where its initial adapter is saved
ADAPTER_FILE = "adapter_model.safetensors"


def init_lora_weights(spec: Any) -> Any:
    """PEFT's init_lora_weights for the method_specific section: True (the default init), or its name."""
    name = spec.init_lora_weights
    if name == "default":
        return True
    if name == "pissa" and spec.pissa_niter:
        return f"pissa_niter_{spec.pissa_niter}"
    return str(name)


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
        use_dora=spec.use_dora,
        use_rslora=spec.use_rslora,
        init_lora_weights=init_lora_weights(spec),
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


def targeted_modules(model: Any, targets: Any) -> list[Any]:
    """The layers `targets` (a list of leaf names or "all-linear") names; [] for a regex, which PEFT resolves."""
    found = lora_targets.adaptable_modules(model)
    if targets == lora_targets.ALL_LINEAR:
        return [m for group in found.values() for m in group]
    if isinstance(targets, str):
        return []
    return [m for name in targets for m in found.get(name, [])]


def check_variants(model: Any, spec: Any, targets: Any, ctx: Any) -> None:
    """What the config rules cannot see: the layers "auto" chose."""
    if spec.init_lora_weights == "olora" and any(lora_targets.is_conv1d(m) for m in targeted_modules(model, targets)):
        raise ctx.fail("config", "init_lora_weights \"olora\" cannot adapt this model's Conv1D layers (GPT-2 style, "
                                 "weights stored in x out): PEFT's OLoRA init ignores fan_in_fan_out and builds "
                                 "adapters of the wrong shape",
                       'use init_lora_weights "pissa" (it handles Conv1D) or "default"')


def log_variants(spec: Any, training: Any, ctx: Any) -> None:
    if spec.use_dora:
        ctx.log("DoRA: each adapted layer also learns its output magnitudes (lora_magnitude_vector)")
    if spec.use_rslora:
        ctx.log(f"rsLoRA: the update is scaled by lora_alpha / sqrt(r) = {spec.lora_alpha / spec.r ** 0.5:.4g}")
    if spec.init_lora_weights in MUTATES_BASE:
        how = f"fast SVD, {spec.pissa_niter} iterations" if spec.pissa_niter and spec.init_lora_weights == "pissa" \
            else ("SVD" if spec.init_lora_weights == "pissa" else "QR")
        ctx.log(f"{'PiSSA' if spec.init_lora_weights == 'pissa' else 'OLoRA'} init ({how}): A and B start from the "
                "base weights, which keep the residual; the saved adapter is converted for the original base "
                f"(rank {2 * spec.r})")
    if spec.loraplus_lr_ratio:
        ctx.log(f"LoRA+: lora_B learns at {spec.loraplus_lr_ratio:g} x learning_rate "
                f"= {spec.loraplus_lr_ratio * training.learning_rate:.3g}")


def keep_initial_adapter(model: Any) -> None:
    """Save the adapter as initialised (PiSSA, OLoRA) where save() finds it; removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="lf-tui-initial-adapter-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    model.save_pretrained(str(folder / "initial"), safe_serialization=True)
    setattr(model, INITIAL_ADAPTER, str(folder / "initial"))


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    """Add LoRA adapters to the frozen base model (trainable weights in fp32 whatever the base dtype)."""
    from peft import get_peft_model

    spec = cfg.method_specific
    targets, fan_in_fan_out = resolve_targets(model, spec, ctx)
    check_variants(model, spec, targets, ctx)
    model = get_peft_model(model, lora_config(spec, targets, fan_in_fan_out), autocast_adapter_dtype=True)
    upcast_trainable(model)
    if spec.init_lora_weights in MUTATES_BASE:
        keep_initial_adapter(model)
    log_variants(spec, cfg.training, ctx)
    return model


def save(model: Any, folder: Path) -> None:
    """adapter_config.json + adapter_model.safetensors, loadable by peft.PeftModel.from_pretrained on the original
    base: a PiSSA or OLoRA adapter is converted to a plain LoRA one (rank 2r: the trained A and B beside the initial
    ones, negated), its other trained tensors (DoRA magnitudes, modules_to_save) kept as they are."""
    import torch

    initial = getattr(model, INITIAL_ADAPTER, None)
    if initial is None:
        model.save_pretrained(str(folder), safe_serialization=True)
        return
    modes = [(module, module.training) for module in model.modules()]
    # the conversion loads the initial adapter beside the trained one (its init draws random numbers) and leaves
    # the model in eval mode: a checkpoint mid-run must change neither the run's random stream nor its dropout
    with torch.random.fork_rng():
        model.save_pretrained(str(folder), safe_serialization=True, path_initial_model_for_weight_conversion=initial)
    for module, training in modes:
        module.training = training
    keep_unconverted_tensors(model, folder / ADAPTER_FILE)


def keep_unconverted_tensors(model: Any, file: Path) -> None:
    """PEFT's conversion writes only lora_A and lora_B: add the adapter's other tensors back (they are the same on
    the original base: DoRA's magnitudes apply to the combined weight, which the conversion leaves unchanged)."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    saved = load_file(str(file))
    extra = {name: tensor.detach().cpu().contiguous() for name, tensor in get_peft_model_state_dict(model).items()
             if name not in saved and "lora_A" not in name and "lora_B" not in name}
    if extra:
        save_file({**saved, **extra}, str(file), metadata={"format": "pt"})


def weight_decay_split(optimizer_cls: type, model: Any) -> Any:
    """`optimizer_cls`, taking LoRA+'s parameter groups and splitting off the engine's no-decay parameters (norms,
    biases and other 1-D ones) of any group with weight decay, as the engine's default optimizer does."""
    names = {id(p): n for n, p in model.named_parameters()}

    def no_decay(param: Any) -> bool:
        name = names.get(id(param), "")
        return param.ndim < 2 or "norm" in name or name.endswith("bias")

    def build(groups: list[dict[str, Any]], **kwargs: Any) -> Any:
        split: list[dict[str, Any]] = []
        for group in groups:
            params = list(group["params"])
            if group.get("weight_decay", 0.0) > 0:
                kept = [p for p in params if not no_decay(p)]
                if len(kept) < len(params):
                    split.append({**group, "params": [p for p in params if no_decay(p)], "weight_decay": 0.0})
                params = kept
            split.append({**group, "params": params})
        return optimizer_cls([g for g in split if g["params"]], **kwargs)

    build.__name__ = optimizer_cls.__name__  # PEFT looks at the name for bitsandbytes' 8-bit optimizers
    return build


def build_optimizer(model: Any, cfg: Any, optimizer_cls: type, **optimizer_kwargs: Any) -> Any:
    """LoRA+ (loraplus_lr_ratio set): PEFT's create_loraplus_optimizer, lora_B at ratio x lr, with the engine's
    weight decay; else None, the engine's optimizer."""
    spec = cfg.method_specific
    if not spec.loraplus_lr_ratio:
        return None
    from peft.optimizers import create_loraplus_optimizer

    kwargs = dict(optimizer_kwargs)
    lr, weight_decay = kwargs.pop("lr"), kwargs.pop("weight_decay", 0.0)
    if spec.loraplus_lr_embedding is not None:
        kwargs["loraplus_lr_embedding"] = spec.loraplus_lr_embedding
    return create_loraplus_optimizer(model, weight_decay_split(optimizer_cls, model), lr=lr,
                                     loraplus_lr_ratio=spec.loraplus_lr_ratio, loraplus_weight_decay=weight_decay,
                                     **kwargs)


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(folder))


def merge(folder: Path, dtype: Any, ctx: Any) -> Any:
    """The adapter folded into a plain base loaded in `dtype` (PEFT's merge_and_unload, in place: DoRA magnitudes,
    Conv1D's fan_in_fan_out and modules_to_save included); a converted PiSSA/OLoRA adapter merges into the original
    base like any LoRA adapter."""
    return load_trained(ctx.load_base_model(dtype=dtype), folder, ctx).merge_and_unload()


class Lora(MethodImplementation):
    """LoRA adapters through PEFT (the base frozen)."""

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)
    build_optimizer = staticmethod(build_optimizer)
    merge = staticmethod(merge)


IMPLEMENTATION = Lora()
