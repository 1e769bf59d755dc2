"""Device and precision resolution, and loading of the tokenizer and base model (hub id, folder or built-in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.builtin_model import builtin_path, is_builtin
from engine.errors import EngineError
from methods.config_models import MethodConfigBase


@dataclass
class Runtime:
    """Where and in what precision the run computes."""

    device: torch.device
    precision: str = "fp32"  # fp32 | bf16 | fp16
    notes: list[str] = field(default_factory=list)
    pure_bf16: bool = False  # full fine-tuning with weights and optimizer states in bf16 (no fp32 master copy)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX, where bf16 matmuls are fast."""
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return "avx512_bf16" in flags or "amx_bf16" in flags or "AMX" in capability


def _device_and_precision(cfg: MethodConfigBase) -> Runtime:
    hw = cfg.hardware
    want = hw.device
    if want == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    else:
        device = want
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("unsupported_hardware", f"hardware.device is {want!r} but no CUDA GPU is visible",
                          'set hardware.device to "auto" or "cpu", or install the CUDA build of torch')
    runtime = Runtime(torch.device(device))
    mp = hw.mixed_precision
    requested = {True: "auto", False: "no"}.get(mp, mp) if isinstance(mp, bool) else mp
    if requested == "no":
        return runtime
    if runtime.device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        runtime.precision = "fp16" if requested == "fp16" or not bf16_ok else "bf16"
    elif runtime.device.type == "cpu":
        if cpu_has_native_bf16() and requested in ("auto", "bf16"):
            runtime.precision = "bf16"
        elif mp is True or requested in ("bf16", "fp16"):
            runtime.notes.append(f"mixed precision {requested} requested, but this CPU has no native bf16 "
                                 "(a bf16 matmul is ~10x slower than fp32 here): training in fp32")
    return runtime


def resolve_runtime(cfg: MethodConfigBase) -> Runtime:
    """Device and precision for `cfg`, and whether pure bf16 applies (a note says why hardware.pure_bf16 does not)."""
    runtime = _device_and_precision(cfg)
    if cfg.hardware.pure_bf16:
        trains_base = trains_base_weights(cfg.method_name)
        runtime.pure_bf16 = trains_base and base_weight_dtype(True, runtime, True) == torch.bfloat16
        if not runtime.pure_bf16:
            why = ("this method trains adapters: the frozen base is in the mixed-precision dtype already"
                   if not trains_base else f"it needs a GPU running bf16 (device {runtime.device.type}, precision "
                   f"{runtime.precision})")
            runtime.notes.append(f"hardware.pure_bf16 is ignored: {why}")
    return runtime


def trains_base_weights(method_name: str) -> bool:
    """A method's trains_base_weights flag (its implementation says so; adapter methods do not)."""
    from methods.catalogue import get_catalogue

    try:
        impl = get_catalogue().get(method_name).implementation()
    except Exception:
        return False
    return impl.trains_base_weights


def base_weight_dtype(method_trains_base: bool, runtime: Runtime | None, pure_bf16: bool) -> torch.dtype:
    """The dtype the base model's weights load in.

    CPU (or no runtime): fp32. On a GPU a frozen base (LoRA, adapters, prefix) loads in the mixed-precision dtype
    (bf16/fp16: half the memory; autocast computes in it anyway) while the method keeps its trainable weights fp32. A
    method that trains the base weights keeps fp32 master weights under autocast, unless pure_bf16 is asked on a bf16
    run: then the weights (and so the optimizer states) are bf16.
    """
    if runtime is None or runtime.device.type == "cpu":
        return torch.float32
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(runtime.precision)
    if half is None:
        return torch.float32
    if method_trains_base:
        return torch.bfloat16 if pure_bf16 and half == torch.bfloat16 else torch.float32
    return half


def model_source(name: str) -> str:
    """The path or hub id that from_pretrained loads for `base_model`."""
    return str(builtin_path(name)) if is_builtin(name) else name


def load_tokenizer(cfg: MethodConfigBase) -> Any:
    """The base model's tokenizer (a pad token, and the BOS training adds added by the tokenizer itself)."""
    from transformers import AutoTokenizer

    from engine.tokenizer_bos import add_bos_as_training_does

    source = model_source(cfg.base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=cfg.trust_remote_code)
    except Exception as exc:
        raise _load_error(cfg.base_model, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    add_bos_as_training_does(tokenizer)  # what a run saves and exports adds the BOS that training adds
    return tokenizer


def load_base_model(cfg: MethodConfigBase, runtime: Runtime | None, **kwargs: Any) -> Any:
    """from_pretrained on a hub id or folder (safetensors preferred; remote code only when asked), its weights in
    base_weight_dtype() unless `dtype` is given."""
    from transformers import AutoModelForCausalLM

    source = model_source(cfg.base_model)
    if "dtype" not in kwargs:
        trains_base = runtime is not None and trains_base_weights(cfg.method_name)
        kwargs["dtype"] = base_weight_dtype(trains_base, runtime, cfg.hardware.pure_bf16)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=cfg.trust_remote_code, **kwargs)
    except EngineError:
        raise
    except Exception as exc:
        raise _load_error(cfg.base_model, exc) from None
    model.config.use_cache = False
    return model


def _load_error(name: str, exc: Exception) -> EngineError:
    local = Path(name).exists()
    hint = ("the folder needs config.json, the weights (*.safetensors) and the tokenizer files" if local else
            "give a local folder, or a hub id this machine can download (set HF_TOKEN for gated models); "
            "builtin:tiny-llama works offline")
    return EngineError("model", f"cannot load model {name!r}: {str(exc).splitlines()[0][:300]}", hint)


def check_target_modules(model: Any, target: str | list[str]) -> None:
    """Fail clearly when target_modules names modules the model does not have, listing the ones it has."""
    if isinstance(target, str):  # "auto" (the LoRA method resolves it), "all-linear" or a regex (PEFT resolves them)
        return
    from methods.lora.targets import adaptable_modules, is_conv1d, is_linear_like

    existing = adaptable_modules(model)
    full_names = [name for name, module in model.named_modules() if name and is_linear_like(module)]
    # a leaf name (q_proj), or a dotted suffix as PEFT matches it (mlp.c_proj: GPT-2's MLP projection, not attn's)
    missing = [t for t in target if t not in existing and not any(n.endswith("." + t) for n in full_names)]
    if missing:
        shown = [f"{name} (Conv1D)" if any(is_conv1d(m) for m in mods) else name for name, mods in
                 sorted(existing.items())]
        raise EngineError("config", f"method_specific.target_modules: {missing} not found in this "
                          f"{getattr(getattr(model, 'config', None), 'model_type', None) or type(model).__name__} model",
                          f"layers that exist: {', '.join(shown)} (or \"auto\" or \"all-linear\")")


def count_parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
