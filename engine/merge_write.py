"""Streaming merge writer: each base shard read (safetensors safe_open), its adapted tensors merged and every floating
tensor cast to the target dtype, written a tensor at a time: the peak is about one shard, never the whole model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from engine.merge_stream import INDEX, Plan

ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
             torch.bool: "BOOL"}
FLOATING = {"F64", "F32", "F16", "BF16"}
TORCH_OF = {name: dtype for dtype, name in ST_DTYPES.items()}


def write_safetensors(path: Path, entries: list[tuple[str, str, list[int]]],
                      produce: Callable[[str], torch.Tensor]) -> int:
    """A safetensors file whose header lists `entries` (name, dtype, shape) and whose tensors `produce(name)` makes
    one at a time, each written as soon as it is made (the format: an 8-byte header length, the JSON header padded
    to 8 bytes, then the tensors' bytes in header order). Returns the bytes of tensor data written."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in entries:
        size = TORCH_OF[dtype].itemsize * _numel(shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for name, dtype, shape in entries:
            tensor = produce(name).contiguous()
            if ST_DTYPES.get(tensor.dtype) != dtype or list(tensor.shape) != shape:
                raise ValueError(f"{name}: made {tensor.dtype} {list(tensor.shape)}, the header says {dtype} {shape}")
            if tensor.numel():
                f.write(tensor.reshape(-1).view(torch.uint8).numpy().data)
            del tensor
    return offset


def _numel(shape: list[int]) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


def merge_shards(plan: Plan, dtype: torch.dtype, out: Path, log: Callable[[str], None] = lambda m: None) -> int:
    """Write every base shard into `out` with the adapter merged, floating tensors in `dtype`; the index (updated
    total size) beside them. Returns the bytes of tensor data written."""
    from safetensors import safe_open

    target = ST_DTYPES[dtype]
    total, used = 0, set()
    for number, shard in enumerate(plan.shards, 1):
        with safe_open(str(plan.base_dir / shard), "pt") as f:
            entries = []
            for key in f.keys():
                source = plan.replace.get(key)
                stored = ST_DTYPES[source.dtype] if source is not None else f.get_slice(key).get_dtype()
                shape = list(source.shape) if source is not None else list(f.get_slice(key).get_shape())
                entries.append((key, target if stored in FLOATING else stored, shape))

            def produce(key: str) -> torch.Tensor:
                tensor = plan.replace[key] if key in plan.replace else f.get_tensor(key)
                if plan.four_bit is not None and key in plan.quantised and key not in plan.replace:
                    tensor = plan.four_bit.roundtrip(tensor, plan.quantised[key])  # the weight QLoRA trained on
                if tensor.is_floating_point():
                    tensor = tensor.to(dtype)  # as from_pretrained(dtype=...) casts the base before PEFT merges
                if key in plan.deltas:
                    tensor = plan.deltas[key].apply(tensor, dtype)
                    used.add(key)
                elif key in plan.bias_of:
                    tensor = plan.bias_of[key].bias(tensor)
                    used.add(key)
                return tensor

            total += write_safetensors(out / shard, entries, produce)
        log(f"merged shard {number}/{len(plan.shards)}: {shard}")
    missed = (set(plan.deltas) | set(plan.bias_of)) - used
    if missed:
        raise ValueError(f"adapted tensors not found in any shard: {sorted(missed)[:3]}")
    if plan.index is not None:
        index = {**plan.index, "metadata": {**plan.index.get("metadata", {}), "total_size": total}}
        (out / INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return total


def write_config(plan: Plan, dtype: torch.dtype, out: Path, trust_remote_code: bool) -> None:
    """The base's config.json with the merged dtype and the cache on (a shared model generates)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(plan.base_dir), trust_remote_code=trust_remote_code)
    config.dtype = dtype
    config.use_cache = True
    config.save_pretrained(str(out))
    if trust_remote_code:  # the model's own code beside its config travels with it, as save_pretrained copies it
        for file in plan.base_dir.glob("*.py"):
            if not (out / file.name).exists():
                shutil.copyfile(file, out / file.name)
