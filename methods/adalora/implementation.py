"""AdaLoRA with PEFT: SVD-form adapters whose rank budget the engine reallocates every optimizer step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.contract import MethodImplementation
from methods.lora import targets as lora_targets
from methods.lora.implementation import upcast_trainable

from .spec import SCHEDULE_HINT, schedule_problem, schedule_steps

ADAPTER = "default"  # the PEFT adapter name (AdaLoRA trains exactly one)


def resolve_targets(model: Any, spec: Any, ctx: Any) -> tuple[Any, bool]:
    """(target_modules, fan_in_fan_out): "auto" resolved and logged as LoRA does, names checked."""
    targets, note = lora_targets.resolve(model, spec.target_modules)
    if note:
        ctx.log(note)
    ctx.check_target_modules(model, targets)
    return targets, lora_targets.all_conv1d(model, targets)


def adalora_config(spec: Any, total_steps: int, target_modules: Any, fan_in_fan_out: bool) -> Any:
    """The peft.AdaLoraConfig for a method_specific section and a run of `total_steps` optimizer steps."""
    from peft import AdaLoraConfig

    tinit, tfinal = schedule_steps(total_steps, spec.tinit_fraction, spec.tfinal_fraction)
    return AdaLoraConfig(init_r=spec.init_r, target_r=spec.target_r, tinit=tinit, tfinal=tfinal, deltaT=spec.deltaT,
                         beta1=spec.beta1, beta2=spec.beta2, orth_reg_weight=spec.orth_reg_weight,
                         total_step=total_steps, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
                         target_modules=target_modules, fan_in_fan_out=fan_in_fan_out, task_type="CAUSAL_LM")


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    """Add AdaLoRA adapters (rank init_r) to the frozen base, scheduled over the run's planned steps."""
    from peft import get_peft_model

    spec = cfg.method_specific
    if spec.target_r >= spec.init_r:
        raise ctx.fail("config", f"target_r ({spec.target_r}) must be below init_r ({spec.init_r})",
                       "AdaLoRA prunes each layer from init_r down to an average of target_r: raise init_r")
    total = ctx.total_steps
    if total <= 0:  # built outside a training run (no steps planned): a placeholder schedule, nothing is pruned
        total = 1
    else:
        problem = schedule_problem(spec, total)
        if problem:
            raise ctx.fail("config", problem, SCHEDULE_HINT)
    targets, fan_in_fan_out = resolve_targets(model, spec, ctx)
    model = get_peft_model(model, adalora_config(spec, total, targets, fan_in_fan_out), autocast_adapter_dtype=True)
    upcast_trainable(model)
    remember_resumed_pattern(model)
    if ctx.total_steps > 0:
        config = peft_config(model)
        budgets = initial_budget(model), target_budget(model)
        ctx.log(f"AdaLoRA schedule over {total} steps: rank {spec.init_r} per layer for {config.tinit} warm-up "
                f"steps, pruning every {config.deltaT} step(s) until the final allocation at step "
                f"{total - config.tfinal}, then {config.tfinal} steps at the final ranks; rank budget "
                f"{budgets[0]} -> {budgets[1]} over {len(lora_e(model))} layers")
    return model


def peft_config(model: Any) -> Any:
    return model.peft_config[ADAPTER]


def lora_e(model: Any) -> dict[str, Any]:
    """{lora_E parameter name, as the rank allocator names it: the singular values of each adapted layer}."""
    suffix = f"lora_E.{ADAPTER}"
    return {n: p for n, p in model.base_model.model.named_parameters() if n.endswith(suffix)}


def initial_budget(model: Any) -> int:
    return int(sum(p.shape[0] for p in lora_e(model).values()))


def target_budget(model: Any) -> int:
    return peft_config(model).target_r * len(lora_e(model))


def pattern_from_weights(model: Any) -> dict[str, list[bool]]:
    """The rank pattern the last allocation left in the weights: which singular values are not zero."""
    return {n: (p.detach() != 0).view(-1).tolist() for n, p in lora_e(model).items()}


RESUMED_PATTERN = "adalora_resumed_pattern"  # attribute of the PEFT model: the pattern a resumed run starts from


def remember_resumed_pattern(model: Any) -> None:
    """Before the model's first forward pass, note which singular values are zero. A fresh model has them all at
    zero (nothing to note); a run resumed from a checkpoint has the zeros of its last allocation, which PEFT's
    config no longer holds (the checkpoint restores weights only) and which the first optimizer step blurs."""

    def hook(module: Any, args: Any) -> None:
        handle.remove()
        pattern = pattern_from_weights(module)
        if any(any(kept) for kept in pattern.values()):
            setattr(module, RESUMED_PATTERN, pattern)

    handle = model.register_forward_pre_hook(hook)


def current_pattern(model: Any) -> dict[str, Any]:
    """The rank pattern now: the last allocation's, else a resumed run's, else the non-zero singular values."""
    return peft_config(model).rank_pattern or getattr(model, RESUMED_PATTERN, None) or pattern_from_weights(model)


def layer_ranks(model: Any) -> dict[str, int]:
    """{layer: its rank now}: what the last allocation kept."""
    pattern = current_pattern(model)
    return {_layer_name(name): int(sum(kept)) for name, kept in pattern.items()}


def _layer_name(name: str) -> str:
    """model.layers.0.self_attn.q_proj.lora_E.default (or without .default, once saved) -> model.layers.0...q_proj"""
    return name.split(".lora_E")[0]


def after_optimizer_step(model: Any, step: int) -> dict[str, float]:
    """Update the importance scores and reallocate the rank budget (PEFT's update_and_allocate, which plain
    transformers.Trainer never calls); report the ranks kept."""
    config = peft_config(model)
    if step > config.total_step - config.tfinal and config.rank_pattern is None:
        # resumed after the final allocation: PEFT would mask with a pattern it no longer has (and fail)
        config.rank_pattern = current_pattern(model)
    model.base_model.update_and_allocate(step)
    return {"rank_budget": float(sum(layer_ranks(model).values()))}


def regularization(model: Any) -> Any:
    """AdaLoRA's orthogonality penalty, orth_reg_weight x the mean of ||A·Aᵀ - I|| and ||Bᵀ·B - I|| over the
    adapted layers, as AdaLoraModel.forward adds it to a loss the model computes (the engine computes its own)."""
    import torch

    weight = peft_config(model).orth_reg_weight
    if weight <= 0:
        return None
    terms = []
    for name, p in model.base_model.model.named_parameters():
        if ("lora_A" in name or "lora_B" in name) and ADAPTER in name and p.numel():
            cov = p @ p.T if "lora_A" in name else p.T @ p
            terms.append(torch.linalg.matrix_norm(cov - torch.eye(*cov.shape, device=cov.device, dtype=cov.dtype)))
    return weight * torch.stack(terms).mean() if terms else None


def summary(model: Any) -> dict[str, Any]:
    """The rank budget at the start, the target and the end, and each layer's final rank."""
    ranks = layer_ranks(model)
    values = list(ranks.values())
    return {"initial_rank_budget": initial_budget(model), "target_rank_budget": target_budget(model),
            "final_rank_budget": sum(values),
            "rank_per_layer": f"{min(values)}-{max(values)} (mean {sum(values) / len(values):.3g})" if values else "-",
            "layer_ranks": ranks}


def save(model: Any, folder: Path) -> None:
    """adapter_config.json (with the rank pattern) + adapter_model.safetensors trimmed to the kept ranks,
    loadable by peft.PeftModel.from_pretrained. A layer pruned to rank 0 saves empty A and B, which PEFT would
    take for unsharded DeepSpeed/FSDP tensors: that warning is silenced (PEFT reloads them as rank 0)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LoRA tensor\(s\) have invalid shape.*")
        model.save_pretrained(str(folder), safe_serialization=True)


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    """The saved adapter on `base_model`, through stock PEFT (which resizes each layer to its saved rank)."""
    import warnings

    from peft import PeftModel

    with warnings.catch_warnings():  # PEFT checks AdaLoRA's rank pattern as if it were LoRA's per-layer ranks
        warnings.filterwarnings("ignore", message=r".*rank_pattern keys did not match any targeted module.*")
        return PeftModel.from_pretrained(base_model, str(folder))


def merge(folder: Path, dtype: Any, ctx: Any) -> Any:
    """The adapter (at its final ranks) folded into a plain base loaded in `dtype`: PEFT's merge_and_unload."""
    return load_trained(ctx.load_base_model(dtype=dtype), folder, ctx).merge_and_unload()


class Adalora(MethodImplementation):
    """AdaLoRA adapters through PEFT (the base frozen), the rank budget reallocated after each optimizer step."""

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)
    after_optimizer_step = staticmethod(after_optimizer_step)
    regularization = staticmethod(regularization)
    summary = staticmethod(summary)
    merge = staticmethod(merge)


IMPLEMENTATION = Adalora()
