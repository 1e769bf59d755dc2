"""QLoRA: load the base in 4-bit NF4 (or 8-bit) with bitsandbytes, prepare for k-bit training, add LoRA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.contract import MethodImplementation
from methods.lora import implementation as lora

CPU_BLOCK = 64  # input features per 4-bit block in bitsandbytes' CPU kernels
QUANTISATION_FILE = "lf_tui_quantisation.json"  # beside the saved adapter: the base's quantisation as trained


def compute_dtype(spec: Any, device_type: str) -> Any:
    import torch

    name = spec.bnb_4bit_compute_dtype
    if name == "auto":
        if device_type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def probe_backend(device: Any) -> None:
    """Quantise a tiny tensor on `device`; raises when bitsandbytes has no backend for it."""
    import bitsandbytes.functional as F
    import torch

    F.quantize_4bit(torch.ones(64, dtype=torch.float32, device=device), quant_type="nf4")


def load_model(cfg: Any, ctx: Any) -> Any:
    """Load the base model quantised by bitsandbytes on the run's device."""
    from transformers import BitsAndBytesConfig

    spec, device = cfg.method_specific, ctx.runtime.device
    try:
        probe_backend(device)
    except Exception as exc:
        raise ctx.fail(
            "unsupported_hardware",
            f"bitsandbytes has no 4-bit backend for device {device.type!r} ({type(exc).__name__}: {exc})",
            "QLoRA needs a CUDA GPU, or bitsandbytes >= 0.50 for CPU; use method 'lora' on this machine",
        ) from None
    dtype = compute_dtype(spec, device.type)
    if spec.load_in_4bit:
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype,
                                 bnb_4bit_quant_type=spec.bnb_4bit_quant_type,
                                 bnb_4bit_use_double_quant=spec.bnb_4bit_use_double_quant)
    else:
        bnb = BitsAndBytesConfig(load_in_8bit=True)
    ctx.log(f"loading the base model in {'4-bit ' + spec.bnb_4bit_quant_type if spec.load_in_4bit else '8-bit'}"
            f" (double quant {spec.bnb_4bit_use_double_quant}, compute {str(dtype).replace('torch.', '')})")
    model = ctx.load_base_model(quantization_config=bnb, device_map={"": device}, dtype=dtype)
    if device.type == "cpu" and spec.load_in_4bit:
        check_cpu_blocks(model, ctx)
        keep_cpu_weights_unpacked(model)
    return model


def keep_cpu_weights_unpacked(model: Any) -> int:
    """Turn off bitsandbytes' AVX512-BF16 CPU fast path, which repacks a 4-bit weight in place on its first
    inference forward: a repacked weight no longer de-quantises correctly (DoRA's weight norms, PEFT's merging) and
    a biased layer then fails in training ("a view of a leaf Variable ... in-place"), as after an eval. Returns how
    many layers it set."""
    layers = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def check_cpu_blocks(model: Any, ctx: Any) -> None:
    """bitsandbytes' CPU 4-bit kernels work in blocks of 64 input features: refuse a narrower layer clearly."""
    for name, module in model.named_modules():
        width = getattr(module, "in_features", None)
        if type(module).__name__ == "Linear4bit" and isinstance(width, int) and width % CPU_BLOCK:
            raise ctx.fail("model", f"layer {name} has {width} input features, not a multiple of {CPU_BLOCK}: "
                                    "bitsandbytes' CPU 4-bit kernels cannot run it",
                           "use method 'lora' for this model (or train QLoRA on a CUDA GPU)")


def apply(model: Any, cfg: Any, ctx: Any) -> Any:
    from peft import prepare_model_for_kbit_training

    spec = cfg.method_specific
    if spec.use_dora and not spec.load_in_4bit and ctx.runtime.device.type == "cpu":
        raise ctx.fail("unsupported_hardware", "DoRA on an 8-bit base fails in bitsandbytes' CPU int8 kernels (its "
                                               "weight norms de-quantise the weights, which breaks the next forward)",
                       "set load_in_4bit to true (DoRA on 4 bits works on CPU), drop use_dora, or train on a CUDA GPU")

    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=cfg.hardware.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    return lora.apply(model, cfg, ctx)


def quantisation(model: Any) -> dict[str, Any] | None:
    """How the trained-on base was quantised, as resolved on the machine that trained it (the compute dtype "auto"
    gives depends on that machine's GPU); None for a model with no bitsandbytes layer."""
    for module in model.modules():
        kind = type(module).__name__
        if kind == "Linear4bit":
            weight = module.weight
            dtype = str(getattr(module, "compute_dtype", None) or "torch.float32").replace("torch.", "")
            return {"bits": 4, "quant_type": getattr(weight, "quant_type", None),
                    "double_quant": bool(getattr(weight, "compress_statistics", False)), "compute_dtype": dtype}
        if kind == "Linear8bitLt":
            return {"bits": 8}
    return None


def save(model: Any, folder: Path) -> None:
    """The LoRA adapter, and beside it QUANTISATION_FILE: how the base it trained on was quantised (export's merge
    into that base de-quantised must use the same compute dtype, whatever machine it runs on)."""
    import json

    lora.save(model, folder)
    found = quantisation(model)
    if found is not None:
        (Path(folder) / QUANTISATION_FILE).write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")


def recorded_compute_dtype(folder: Path) -> Any:
    """The 4-bit compute dtype a run's saved weights record (a torch dtype), or None when they record none."""
    import json

    import torch

    try:
        found = json.loads((Path(folder) / QUANTISATION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dtype = getattr(torch, str(found.get("compute_dtype")), None) if isinstance(found, dict) else None
    return dtype if isinstance(dtype, torch.dtype) else None


def load_trained(base_model: Any, folder: Path, ctx: Any) -> Any:
    return lora.load_trained(base_model, folder, ctx)


def build_optimizer(model: Any, cfg: Any, optimizer_cls: type, **optimizer_kwargs: Any) -> Any:
    return lora.build_optimizer(model, cfg, optimizer_cls, **optimizer_kwargs)


def merge(folder: Path, dtype: Any, ctx: Any) -> Any:
    """The adapter folded into the de-quantised base: the base reloaded plainly in `dtype` (no bitsandbytes, never
    the 4-bit weights it trained on), the adapter loaded with stock PEFT, then merge_and_unload."""
    return lora.merge(folder, dtype, ctx)


class Qlora(MethodImplementation):
    """LoRA on a quantised base: loads the base itself (on the run's device) and prepares it for k-bit training."""

    handles_gradient_checkpointing = True  # prepare_model_for_kbit_training enables it in apply()
    places_model = True  # load_model passes device_map

    # the hooks are this module's functions (the method's tests call them directly)
    load_model = staticmethod(load_model)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)
    build_optimizer = staticmethod(build_optimizer)
    merge = staticmethod(merge)


IMPLEMENTATION = Qlora()
