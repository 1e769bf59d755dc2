"""Which layers IA³ scales: `"auto"` resolved per architecture (keys, values, feed-forward) and names checked.

IA³ (Liu et al. 2022) learns three vectors per block: one scaling the attention keys, one the values, one the
feed-forward activation. On a Hugging Face model that is the key and value projections (their output is scaled)
and the feed-forward down projection (its input, the activation, is scaled: a "feed-forward module" in PEFT's
words). A fused query-key-value projection is scaled as a whole.
"""

from __future__ import annotations

from typing import Any

from methods.lora.targets import is_conv1d, is_linear_like

AUTO = "auto"
# separate key/value projections, in order of preference; else one fused query-key-value projection
KEY_VALUE_PAIRS = (("k_proj", "v_proj"), ("key", "value"), ("key_proj", "value_proj"), ("k", "v"))
FUSED_QKV = ("qkv_proj", "query_key_value", "c_attn", "Wqkv", "W_pack", "qkv")
# the feed-forward layer whose input is the activation (it projects back to the hidden size)
FEEDFORWARD_OUTPUT = ("down_proj", "dense_4h_to_h", "fc2", "fc_out", "w2", "c_proj")
FEEDFORWARD_BLOCKS = ("mlp", "feed_forward", "ffn")


def layers(model: Any) -> dict[str, Any]:
    """{full name: module} of every Linear or Conv1D layer except the output head (lm_head)."""
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    return {full: module for full, module in model.named_modules()
            if full and module is not head and full.rsplit(".", 1)[-1] != "lm_head" and is_linear_like(module)}


def matches(full: str, name: str) -> bool:
    """PEFT's rule for a target_modules list entry: the layer's full name, or a suffix of it at a dot."""
    return full == name or full.endswith("." + name)


def in_feedforward_block(full: str) -> bool:
    return any(part in FEEDFORWARD_BLOCKS for part in full.split(".")[:-1])


def model_type(model: Any) -> str:
    return getattr(getattr(model, "config", None), "model_type", None) or type(model).__name__


def missing(model: Any, names: list[str]) -> list[str]:
    """The names no layer of `model` matches."""
    found = layers(model)
    return [name for name in names if not any(matches(full, name) for full in found)]


def existing_names(model: Any) -> list[str]:
    """The layer names target_modules may list (leaf names; Conv1D marked), for error hints."""
    leaves: dict[str, bool] = {}
    for full, module in layers(model).items():
        leaf = full.rsplit(".", 1)[-1]
        leaves[leaf] = leaves.get(leaf, False) or is_conv1d(module)
    return [f"{leaf} (Conv1D)" if conv else leaf for leaf, conv in sorted(leaves.items())]


def _leaves(model: Any) -> set[str]:
    return {full.rsplit(".", 1)[-1] for full in layers(model)}


def _attention(leaves: set[str]) -> tuple[list[str], str] | None:
    for pair in KEY_VALUE_PAIRS:
        if all(name in leaves for name in pair):
            return list(pair), "the attention key and value projections"
    for fused in FUSED_QKV:
        if fused in leaves:
            return [fused], "the fused attention query-key-value projection"
    return None


def _feedforward(model: Any) -> str | None:
    """The feed-forward down projection's name: its leaf name, or `block.leaf` where the leaf is also used outside
    the feed-forward block (GPT-2's c_proj is in both attn and mlp: mlp.c_proj)."""
    found = list(layers(model))
    for name in FEEDFORWARD_OUTPUT:
        paths = [full for full in found if full.rsplit(".", 1)[-1] == name]
        inside = [full for full in paths if in_feedforward_block(full)]
        if paths and len(inside) == len(paths):
            return name
        if inside:
            parents = {full.rsplit(".", 2)[-2] for full in inside}
            if len(parents) == 1:
                return f"{parents.pop()}.{name}"
        elif paths and name != "c_proj":  # a down projection right in the block (OPT's fc2); c_proj is attention's
            return name
    return None


def _peft_default(model: Any) -> tuple[list[str], list[str]] | None:
    """PEFT's IA³ (targets, feed-forward) for the model type, when it has one."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as PEFT_FEEDFORWARD
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_TARGETS

    kind = model_type(model)
    targets, feedforward = PEFT_TARGETS.get(kind), PEFT_FEEDFORWARD.get(kind)
    if not isinstance(targets, list) or not isinstance(feedforward, list):
        return None
    return list(targets), list(feedforward)


def auto_targets(model: Any) -> tuple[list[str], list[str], str]:
    """(target_modules, feedforward_modules, why) for target_modules "auto": the attention keys and values (or the
    fused qkv projection) and the feed-forward down projection, by layer names; else PEFT's default for the model
    type when the model has those layers. Raises ValueError when neither applies."""
    attention, feedforward = _attention(_leaves(model)), _feedforward(model)
    peft = _peft_default(model)
    if attention and feedforward:
        names, why = attention[0] + [feedforward], f"{attention[1]} and the feed-forward down projection"
        if peft is not None and set(peft[0]) != set(names):
            why += f"; PEFT's own default for {model_type(model)} differs: {', '.join(peft[0])}"
        return names, [feedforward], why
    if peft is not None and not missing(model, peft[0]):
        return peft[0], peft[1], f"PEFT's default for model type {model_type(model)!r}"
    if attention:
        return attention[0], [], f"{attention[1]} (no feed-forward down projection recognised)"
    raise ValueError("no attention key/value or fused query-key-value projection recognised")


def auto_feedforward(model: Any, targets: list[str]) -> list[str]:
    """feedforward_modules "auto" for a target list: the targets that are all feed-forward down projections (in a
    feed-forward block, or named as one, their input wider than their output)."""
    found = layers(model)
    chosen = []
    for name in targets:
        modules = [(full, module) for full, module in found.items() if matches(full, name)]
        if modules and all(_is_down_projection(full, module) for full, module in modules):
            chosen.append(name)
    return chosen


def _is_down_projection(full: str, module: Any) -> bool:
    shape = tuple(getattr(getattr(module, "weight", None), "shape", ()))
    if len(shape) != 2:
        return False
    fan_in, fan_out = shape if is_conv1d(module) else (shape[1], shape[0])  # Conv1D stores its weight in x out
    leaf = full.rsplit(".", 1)[-1]
    return fan_in > fan_out and (in_feedforward_block(full) or (leaf in FEEDFORWARD_OUTPUT and leaf != "c_proj"))


def all_conv1d(model: Any, targets: list[str]) -> bool:
    """True when every targeted layer is a Conv1D (weights stored in x out): PEFT's fan_in_fan_out."""
    modules = [module for full, module in layers(model).items() if any(matches(full, name) for name in targets)]
    return bool(modules) and all(is_conv1d(module) for module in modules)


def resolve(model: Any, target: Any, feedforward: Any) -> tuple[list[str], list[str], str]:
    """(target_modules, feedforward_modules, note) as PEFT should get them; the note says how "auto" was resolved
    ("" when nothing was "auto"). Raises ValueError when "auto" finds nothing to scale."""
    notes = []
    if target == AUTO:
        targets, auto_ff, why = auto_targets(model)
        notes.append(f'target_modules "auto" for this {type(model).__name__}: {", ".join(targets)} ({why})')
    else:
        targets, auto_ff = list(target), None
    if feedforward == AUTO:
        chosen = auto_ff if auto_ff is not None else auto_feedforward(model, targets)
        notes.append(f'feedforward_modules "auto": {", ".join(chosen) or "none"} '
                     "(IA³ scales a feed-forward layer's input, the activation, and the other targets' output)")
    else:
        chosen = list(feedforward)
    return targets, chosen, "; ".join(notes)
