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


def resolve_runtime(cfg: MethodConfigBase) -> Runtime:
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


def model_source(name: str) -> str:
    """The path or hub id that from_pretrained loads for `base_model`."""
    return str(builtin_path(name)) if is_builtin(name) else name


def load_tokenizer(cfg: MethodConfigBase) -> Any:
    from transformers import AutoTokenizer

    source = model_source(cfg.base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=cfg.trust_remote_code)
    except Exception as exc:
        raise _load_error(cfg.base_model, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(cfg: MethodConfigBase, runtime: Runtime, **kwargs: Any) -> Any:
    """from_pretrained on a hub id or folder (safetensors preferred; remote code only when asked)."""
    from transformers import AutoModelForCausalLM

    source = model_source(cfg.base_model)
    kwargs.setdefault("dtype", torch.float32)
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


def linear_module_names(model: Any) -> list[str]:
    """Leaf names of the linear layers (what target_modules may name)."""
    names = set()
    for full, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt"):
            names.add(full.rsplit(".", 1)[-1])
    names.discard("lm_head")
    return sorted(names)


def check_target_modules(model: Any, target: str | list[str]) -> None:
    """Fail clearly when target_modules names modules the model does not have."""
    if target == "all-linear":
        return
    existing = linear_module_names(model)
    missing = [t for t in target if t not in existing]
    if missing:
        raise EngineError("config", f"method_specific.target_modules: {missing} not found in the model",
                          f"modules that exist: {', '.join(existing)} (or \"all-linear\")")


def count_parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
