"""Streaming merge plan: which base tensors a LoRA-family adapter (LoRA, rsLoRA, DoRA, PiSSA converted, QLoRA, AdaLoRA)
changes and how, read from its safetensors file and the base's config alone (no weights loaded), or why it cannot.

The arithmetic is PEFT's merge_and_unload's, operation for operation (peft/tuners/lora/layer.py, variants.py,
adalora/layer.py), so a streamed merge writes the same tensors as the in-memory one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

PREFIX = "base_model.model."
INDEX, SINGLE = "model.safetensors.index.json", "model.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"
PEFT_TYPES = ("LORA", "ADALORA")
# adapter_config fields whose (truthy) feature the streamed merge does not reproduce: the in-memory path handles them
UNSUPPORTED = ("layer_replication", "trainable_token_indices", "alora_invocation_tokens", "use_qalora", "arrow_config",
               "target_parameters", "megatron_config", "use_bdlora", "modules_to_tie")
LORA_PARTS = {"lora_A.weight": "A", "lora_B.weight": "B", "lora_B.bias": "bias", "lora_magnitude_vector": "magnitude",
              "lora_embedding_A": "A", "lora_embedding_B": "B", "lora_A": "A", "lora_B": "B", "lora_E": "E"}


class NotStreamable(Exception):
    """Why the streamed merge does not apply (the export falls back to the in-memory merge and says why)."""


@dataclass
class Delta:
    """The change to one base weight: kind lora (Linear or Conv1D), embedding or adalora."""

    kind: str
    parts: dict[str, torch.Tensor]
    scaling: float
    fan_in_fan_out: bool = False
    ranknum: float = 0.0  # AdaLoRA's divisor (its init_r)
    in_base_dtype: bool = False  # an AdaLoRA layer PEFT resizes by the rank pattern: its weights rounded to W's dtype

    def apply(self, weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """`weight` (already in the target dtype) with this delta merged, as PEFT's merge computes it."""
        A, B = self.parts["A"], self.parts["B"]
        if self.kind == "adalora":  # AdaLoraLayer.get_delta_weight; merge: W += delta
            E, ranknum = self.parts["E"], torch.tensor([self.ranknum], dtype=torch.float32)
            if self.in_base_dtype:  # resize_modules_by_rank_pattern copies the weights into layers rebuilt in W's
                A, B, E = (t.to(dtype).float() for t in (A, B, E))  # dtype, which PEFT then casts back to fp32
            delta = _t(B @ (A * E), self.fan_in_fan_out) * self.scaling / (ranknum + 1e-5)
            return _add(weight, delta)
        if self.kind == "embedding":  # Embedding.get_delta_weight; merge: W += delta.to(W.dtype)
            return weight + (_t(B @ A, True) * self.scaling).to(dtype)
        delta = _t(B @ A, self.fan_in_fan_out) * self.scaling  # Linear.get_delta_weight (fp32 adapter weights)
        magnitude = self.parts.get("magnitude")
        if magnitude is None:  # merge: W += delta (computed in fp32, rounded once to W's dtype)
            return _add(weight, delta)
        # DoraLinearVariant.merge_unsafe: the norm of the unmerged W + delta, rows of the (out, in) matrix
        norm = torch.linalg.norm(_t(weight, self.fan_in_fan_out) + 1 * _t(delta, self.fan_in_fan_out), dim=1)
        factor = _t((magnitude / norm.to(torch.promote_types(weight.dtype, delta.dtype))).view(-1, 1),
                    self.fan_in_fan_out)
        return (factor * (weight.data + delta)).to(dtype)

    def bias(self, bias: torch.Tensor) -> torch.Tensor:
        return _add(bias, self.parts["bias"] * self.scaling)


def _t(tensor: torch.Tensor, fan_in_fan_out: bool) -> torch.Tensor:
    return tensor.T if fan_in_fan_out else tensor


def _add(weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    out = weight.clone()
    out += delta  # in place, as PEFT: computed in the wider dtype, rounded once
    return out


@dataclass
class FourBit:
    """How bitsandbytes quantised the base QLoRA trained on (transformers' 4-bit loading: every Linear and Conv1D
    layer but the skipped ones, in blocks of 64, from the weights in the compute dtype)."""

    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: torch.dtype = torch.float32

    def roundtrip(self, weight: torch.Tensor, conv1d: bool) -> torch.Tensor:
        """The weight as the 4-bit layer computes with it: quantised, then de-quantised in the compute dtype."""
        import bitsandbytes.functional as F

        stored = weight.to(self.compute_dtype)
        stored = (stored.T if conv1d else stored).contiguous()  # a Conv1D weight is quantised as (out, in)
        packed, state = F.quantize_4bit(stored, blocksize=BLOCKSIZE, compress_statistics=self.double_quant,
                                        quant_type=self.quant_type)
        restored = F.dequantize_4bit(packed, state)
        return restored.T.contiguous() if conv1d else restored


BLOCKSIZE = 64  # bitsandbytes' Params4bit default, which transformers' 4-bit loading uses


@dataclass
class Plan:
    base_dir: Path
    shards: list[str]  # the base's safetensors files, in its order
    index: dict[str, Any] | None  # the base's model.safetensors.index.json (None: a single file)
    deltas: dict[str, Delta] = field(default_factory=dict)  # base key -> its change
    bias_of: dict[str, Delta] = field(default_factory=dict)  # base bias key -> the delta whose lora_B bias adds to it
    replace: dict[str, torch.Tensor] = field(default_factory=dict)  # base key -> the adapter's trained copy
    adapter_bytes: int = 0
    four_bit: FourBit | None = None  # QLoRA into its de-quantised 4-bit base: how the base was quantised
    quantised: dict[str, bool] = field(default_factory=dict)  # base key -> a Conv1D weight (stored in x out)

    @property
    def changed(self) -> int:
        return len(self.deltas) + len(self.replace) + len(self.bias_of)


def base_folder(source: str) -> Path:
    """The folder holding the base's files: a local folder, or a hub id's snapshot already in the HF cache."""
    folder = Path(source)
    if folder.is_dir():
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True))
    except Exception:
        raise NotStreamable(f"the base {source!r} is neither a local folder nor a hub snapshot in this machine's "
                            "Hugging Face cache") from None


def shard_files(folder: Path) -> tuple[list[str], dict[str, Any] | None]:
    if (folder / INDEX).is_file():
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        shards = list(dict.fromkeys(index.get("weight_map", {}).values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if not shards or missing:
            raise NotStreamable(f"{folder / INDEX} names shards that are not there ({', '.join(missing[:3])})")
        return shards, index
    if (folder / SINGLE).is_file():
        return [SINGLE], None
    raise NotStreamable(f"{folder} holds no safetensors weights ({SINGLE} or {INDEX})")


def base_keys(folder: Path, shards: list[str]) -> dict[str, tuple[str, list[int]]]:
    """Every base tensor's name -> (its shard, its shape), from the shards' headers (no tensor read)."""
    from safetensors import safe_open

    keys: dict[str, tuple[str, list[int]]] = {}
    for shard in shards:
        with safe_open(str(folder / shard), "pt") as f:
            for key in f.keys():
                keys[key] = (shard, list(f.get_slice(key).get_shape()))
    return keys


def meta_model(folder: Path, trust_remote_code: bool) -> Any:
    """The base's module tree on the meta device (no memory): the layer types (Linear, Conv1D, Embedding)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    if getattr(config, "quantization_config", None):
        raise NotStreamable("the base checkpoint is pre-quantised (its config.json has a quantization_config)")
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def pattern_value(patterns: dict[str, Any] | None, module: str, default: Any) -> Any:
    """PEFT's get_pattern_key: the first pattern key that is a dotted suffix of the module's name."""
    for key in patterns or {}:
        if re.match(rf"(.*\.)?({key})$", module):
            return patterns[key]  # type: ignore[index]
    return default


def split_key(key: str) -> tuple[str, str] | None:
    """('model.layers.0.self_attn.q_proj', 'lora_A.weight') for an adapter tensor's name; None for other tensors."""
    for part in sorted(LORA_PARTS, key=len, reverse=True):
        if key.endswith("." + part):
            return key[: -len(part) - 1], part
    return None


def layer_kind(module: Any) -> str:
    from torch import nn

    if type(module).__name__ == "Conv1D":
        return "conv1d"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if isinstance(module, nn.Linear):
        return "linear"
    raise NotStreamable(f"a {type(module).__name__} layer is adapted (the streamed merge knows Linear, Conv1D and "
                        "Embedding layers)")


def quantised_weights(model: Any, keys: dict[str, tuple[str, list[int]]]) -> dict[str, bool]:
    """The base weights transformers' 4-bit loading quantises (its own rule: Linear and Conv1D layers, not the output
    embeddings, tied or last ones, nor those kept in fp32) -> whether each is a Conv1D's."""
    from torch import nn
    from transformers.quantizers.base import get_keys_to_not_convert
    from transformers.quantizers.quantizers_utils import should_convert_module

    skip = get_keys_to_not_convert(model) + list(getattr(model, "_keep_in_fp32_modules", None) or [])
    found = {}
    for name, module in model.named_modules():
        conv1d = type(module).__name__ == "Conv1D"
        if (conv1d or type(module) is nn.Linear) and should_convert_module(name, skip) and f"{name}.weight" in keys:
            found[f"{name}.weight"] = conv1d
    return found


def plan(source: str, adapter_dir: Path, trust_remote_code: bool = False, four_bit: FourBit | None = None) -> Plan:
    """The streamed merge of the adapter in `adapter_dir` into the base `source` (with `four_bit`: into that base
    as 4-bit quantised and de-quantised, as QLoRA trained on it); NotStreamable says why not."""
    from safetensors.torch import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    kind = config.get("peft_type")
    if kind not in PEFT_TYPES:
        raise NotStreamable(f"a {kind} adapter (the streamed merge folds LoRA-family adapters: LoRA, AdaLoRA)")
    used = [name for name in UNSUPPORTED if config.get(name)]
    if used:
        raise NotStreamable(f"the adapter uses {', '.join(used)}")
    if not (adapter_dir / ADAPTER_FILE).is_file():
        raise NotStreamable(f"no {ADAPTER_FILE} in {adapter_dir}")
    folder = base_folder(source)
    shards, index = shard_files(folder)
    keys = base_keys(folder, shards)
    model = meta_model(folder, trust_remote_code)
    tensors = load_file(str(adapter_dir / ADAPTER_FILE))
    result = Plan(folder, shards, index, adapter_bytes=sum(t.numel() * t.element_size() for t in tensors.values()))
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        if not name.startswith(PREFIX):
            raise NotStreamable(f"adapter tensor {name!r} is not named {PREFIX}…")
        name = name[len(PREFIX):]
        split = split_key(name)
        if split is None:  # modules_to_save, trained biases, a saved (resized) embedding: a copy of a base tensor
            target = name.replace(".base_layer.", ".")
            if "lora_" in target or target not in keys:
                raise NotStreamable(f"adapter tensor {name!r} matches no base tensor")
            result.replace[target] = tensor
            continue
        layers.setdefault(split[0], {})[LORA_PARTS[split[1]]] = tensor.float()
    for module_name, parts in layers.items():
        add_layer(result, config, model, module_name, parts, keys)
    if four_bit is not None:
        result.four_bit, result.quantised = four_bit, quantised_weights(model, keys)
    return result


def add_layer(result: Plan, config: dict[str, Any], model: Any, name: str, parts: dict[str, torch.Tensor],
              keys: dict[str, tuple[str, list[int]]]) -> None:
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise NotStreamable(f"the adapter adapts {name!r}, which the base model does not have") from None
    layer = layer_kind(module)
    weight = f"{name}.weight"
    if weight not in keys:
        raise NotStreamable(f"{weight} is not stored in the base's shards (a tied or converted weight)")
    if "A" not in parts or "B" not in parts:
        raise NotStreamable(f"{name}: the adapter holds only {sorted(parts)}")
    fan_in_fan_out = layer == "conv1d"  # PEFT forces it on for Conv1D and off for Linear, whatever the config
    if config["peft_type"] == "ADALORA":
        if "E" not in parts or layer == "embedding":
            raise NotStreamable(f"{name}: an AdaLoRA layer without lora_E, or on an embedding")
        alpha, init_r = config.get("lora_alpha", 8), int(config.get("init_r", 12))
        resized = any(key.rsplit(".", 1)[0] == name for key in config.get("rank_pattern") or {})
        delta = Delta("adalora", parts, float(alpha if alpha > 0 else init_r), fan_in_fan_out, float(init_r),
                      in_base_dtype=resized)
    else:
        r = int(pattern_value(config.get("rank_pattern"), name, config["r"]))
        alpha = pattern_value(config.get("alpha_pattern"), name, config["lora_alpha"])
        if parts["A"].shape[0] != r:
            raise NotStreamable(f"{name}: lora_A has rank {parts['A'].shape[0]}, the config says {r}")
        scaling = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
        if layer == "embedding" and ("magnitude" in parts or "bias" in parts):
            raise NotStreamable(f"{name}: DoRA or a LoRA bias on an embedding")
        delta = Delta("embedding" if layer == "embedding" else "lora", parts, scaling, fan_in_fan_out)
    expected = list(result.replace[weight].shape) if weight in result.replace else list(keys[weight][1])
    rows, cols = int(parts["B"].shape[0]), int(parts["A"].shape[-1])
    shape = [cols, rows] if fan_in_fan_out or layer == "embedding" else [rows, cols]
    if shape != expected or parts["B"].shape[-1] != parts["A"].shape[0]:
        raise NotStreamable(f"{name}: the adapter's update has shape {shape}, the base weight {expected}")
    result.deltas[weight] = delta
    if "bias" in parts:
        if f"{name}.bias" not in keys:
            raise NotStreamable(f"{name}: a LoRA bias, but the base layer has no stored bias")
        result.bias_of[f"{name}.bias"] = delta
