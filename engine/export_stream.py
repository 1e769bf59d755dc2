"""The merged export's streamed path: whether it applies (else the reason the in-memory merge runs), how QLoRA's
4-bit base was quantised (for a merge into it de-quantised), and writing the merged folder shard by shard."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine.export import TORCH_DTYPES, fail, generation_config

STREAMED_METHODS = ("lora", "qlora", "adalora")  # merged by PEFT's merge_and_unload: the streamed merge reproduces it


def four_bit_base(run: Any, cfg: Any, weights: Path) -> tuple[Any, str]:
    """(how QLoRA quantised the base it trained on: quant type, double quantisation and the compute dtype, for a
    merge into that base de-quantised; where the compute dtype comes from). The compute dtype is the one the run
    recorded beside its weights (resolved on the machine that trained it); a run from before that record: the
    config's, with "auto" derived from the device it trained on."""
    import torch

    from engine.merge_stream import FourBit
    from methods.qlora.implementation import QUANTISATION_FILE, compute_dtype, recorded_compute_dtype

    spec = cfg.method_specific
    if cfg.method_name != "qlora" or not getattr(spec, "load_in_4bit", False):
        raise fail("--qlora-base 4bit applies to QLoRA runs trained on a 4-bit base",
                   "drop --qlora-base (the adapter merges into the full-precision base)")
    dtype = recorded_compute_dtype(weights)
    if dtype is not None:
        origin = f"compute dtype {short(dtype)}, as the run recorded it in {QUANTISATION_FILE}"
    else:
        device = trained_on(run)
        if spec.bnb_4bit_compute_dtype == "auto" and device == "cuda" and not torch.cuda.is_available():
            dtype = torch.bfloat16  # what auto resolves to on the GPUs QLoRA is trained on (Ampere and later)
            origin = ("compute dtype bfloat16, assumed: the run (trained on cuda, compute dtype auto) recorded none "
                      "and this machine has no GPU to resolve auto on")
        else:
            dtype = compute_dtype(spec, device)
            origin = (f"compute dtype {short(dtype)}, from the config ({spec.bnb_4bit_compute_dtype}) and the "
                      f"device the run trained on ({device}): the run recorded none")
    return FourBit(spec.bnb_4bit_quant_type, spec.bnb_4bit_use_double_quant, dtype), origin


def short(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def trained_on(run: Any) -> str:
    """The device type the run trained on (its run_started event; cpu when it has none)."""
    try:
        with open(run.events_path, encoding="utf-8") as events:
            for line in events:
                if '"run_started"' in line:
                    return str(json.loads(line).get("device") or "cpu").split(":")[0]
    except (OSError, ValueError):
        pass
    return "cpu"


def streaming_plan(cfg: Any, weights: Path, merge_path: str, four_bit: Any = None) -> tuple[Any, str]:
    """(the streamed merge's plan, or None for the in-memory merge; the reason for the path taken)."""
    from engine.merge_stream import NotStreamable, plan
    from engine.models import model_source

    if merge_path == "in-memory" and four_bit is None:
        return None, "asked for (merge path in-memory)"
    try:
        if merge_path == "in-memory":
            raise NotStreamable("the in-memory merge was asked for")
        if cfg.method_name not in STREAMED_METHODS:
            raise NotStreamable(f"method {cfg.method_name} merges through its own hook (the streamed merge folds "
                                f"LoRA-family adapters: {', '.join(STREAMED_METHODS)})")
        found = plan(model_source(cfg.base_model), weights, cfg.trust_remote_code, four_bit)
    except NotStreamable as exc:
        if four_bit is not None:
            raise fail(f"--qlora-base 4bit needs the streamed merge, which does not apply: {exc}",
                       "drop --qlora-base (the adapter merges into the full-precision base)") from None
        if merge_path == "streaming":
            raise fail(f"the streamed merge does not apply: {exc}", "use the in-memory merge (merge path auto)") \
                from None
        return None, f"{exc}: merged in memory (one copy of the model)"
    if four_bit is not None:
        return found, (f"into the base as QLoRA trained on it: {len(found.quantised)} weights quantised to 4-bit "
                       f"{four_bit.quant_type} and de-quantised, the adapter added; one shard at a time")
    return found, (f"the base is {len(found.shards)} safetensors file(s) in {found.base_dir}: merged one shard at a "
                   f"time ({found.changed} tensors changed)")


def write_streamed(plan: Any, cfg: Any, dtype_name: str, tokenizer: Any, stage: Path) -> None:
    """The merged model written shard by shard from the base's files (engine.merge_write): config, shards, index."""
    import torch

    from engine.merge_write import merge_shards, write_config

    dtype = getattr(torch, TORCH_DTYPES[dtype_name])
    with torch.no_grad():
        merge_shards(plan, dtype, stage, lambda message: print(message, file=sys.stderr))
    write_config(plan, dtype, stage, cfg.trust_remote_code)
    generation_config(cfg, tokenizer).save_pretrained(str(stage))
