"""A model's sizes as its config.json states them: parameter counts and the linear layers of one block (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

Targets = Union[str, list[str]]


@dataclass(frozen=True)
class Linear:
    """One linear layer of a decoder block: its leaf name, widths, and whether it is attention or feed-forward."""

    name: str
    in_features: int
    out_features: int
    feed_forward: bool = False

    @property
    def params(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class ModelShape:
    """The sizes the memory planner needs: embeddings, head, layers, their linear layers, attention widths."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tied_embeddings: bool
    linears: tuple[Linear, ...]  # of one block
    known_layout: bool = True  # False: an unknown model_type, laid out as a Llama (less certain)

    @property
    def block_linear_params(self) -> int:
        return sum(linear.params for linear in self.linears)

    @property
    def block_other_params(self) -> int:
        return 2 * self.hidden_size  # two norms (biases are noise at this scale)

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def head_params(self) -> int:
        return 0 if self.tied_embeddings else self.vocab_size * self.hidden_size

    @property
    def linear_params(self) -> int:
        """Parameters of every block's linear layers (what 4-bit quantisation packs)."""
        return self.num_layers * self.block_linear_params

    @property
    def total_params(self) -> int:
        return (self.embedding_params + self.head_params + self.hidden_size
                + self.num_layers * (self.block_linear_params + self.block_other_params))

    def targeted(self, targets: Targets, auto: list[str]) -> list[Linear]:
        """The block's linear layers `targets` names ("all-linear", "auto": `auto`, or names; a name may be a
        suffix such as "mlp.c_proj")."""
        if targets == "all-linear":
            return list(self.linears)
        names = auto if targets == "auto" else [targets] if isinstance(targets, str) else targets
        # PEFT's rule: a name matches a layer whose full name is it or ends with "." + it (so "c_proj" is both
        # GPT-2 projections, "mlp.c_proj" only the MLP's, and "up_proj" never Phi-3's "gate_up_proj")
        return [linear for linear in self.linears if any(linear.name == n or linear.name.endswith("." + n)
                                                         or n.endswith("." + linear.name) for n in names)]


def _get(config: dict[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if config.get(name) is not None:
            return config[name]
    return default


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """The shape of a transformers causal LM from its config.json (Llama-like, GPT-2, GPT-NeoX, Phi-3 layouts)."""
    text = config.get("text_config")
    if isinstance(text, dict):  # multimodal configs nest the language model's
        config = {**text, "model_type": text.get("model_type", config.get("model_type"))}
    model_type = str(config.get("model_type", ""))
    h = int(_get(config, "hidden_size", "n_embd", "d_model"))
    heads = int(_get(config, "num_attention_heads", "n_head"))
    kv = int(_get(config, "num_key_value_heads", default=heads) or heads)
    head_dim = int(_get(config, "head_dim", default=h // heads) or h // heads)
    inter = int(_get(config, "intermediate_size", "n_inner", "ffn_dim", default=4 * h) or 4 * h)
    q, kv_width = heads * head_dim, kv * head_dim
    known = True
    linears: tuple[Linear, ...]
    if model_type == "gpt2":
        linears = (Linear("c_attn", h, 3 * h), Linear("attn.c_proj", h, h), Linear("c_fc", h, inter, True),
                   Linear("mlp.c_proj", inter, h, True))
    elif model_type == "gpt_neox":
        linears = (Linear("query_key_value", h, 3 * h), Linear("dense", h, h),
                   Linear("dense_h_to_4h", h, inter, True), Linear("dense_4h_to_h", inter, h, True))
    elif model_type == "phi3":
        linears = (Linear("qkv_proj", h, q + 2 * kv_width), Linear("o_proj", q, h),
                   Linear("gate_up_proj", h, 2 * inter, True), Linear("down_proj", inter, h, True))
    else:  # Llama, Mistral, Qwen2/3, Gemma, ... (and the layout assumed for an unknown type)
        known = model_type in LLAMA_LIKE
        linears = (Linear("q_proj", h, q), Linear("k_proj", h, kv_width), Linear("v_proj", h, kv_width),
                   Linear("o_proj", q, h), Linear("gate_proj", h, inter, True), Linear("up_proj", h, inter, True),
                   Linear("down_proj", inter, h, True))
    return ModelShape(model_type=model_type, vocab_size=int(_get(config, "vocab_size")), hidden_size=h,
                      intermediate_size=inter, num_layers=int(_get(config, "num_hidden_layers", "n_layer")),
                      num_heads=heads, num_kv_heads=kv, head_dim=head_dim,
                      tied_embeddings=bool(config.get("tie_word_embeddings", model_type == "gpt2")),
                      linears=linears, known_layout=known)


LLAMA_LIKE = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo",
                        "olmo2", "granite", "cohere", "starcoder2", "smollm3", "internlm2", "yi", "deepseek"})
# what LoRA's "auto" picks per layout (PEFT's defaults: query and value projections)
AUTO_LORA = {"gpt2": ["c_attn"], "gpt_neox": ["query_key_value"], "phi3": ["qkv_proj"]}


def auto_lora_targets(shape: ModelShape) -> list[str]:
    return AUTO_LORA.get(shape.model_type, ["q_proj", "v_proj"])


REFERENCE_DIR = Path(__file__).resolve().parent / "reference_models"  # published config.json files (sizes only)


@lru_cache(maxsize=1)
def _references() -> dict[str, tuple[str, Path]]:
    """{hub id, lower case: (hub id, config.json)} of the bundled reference shapes (`_name_or_path` names the id)."""
    import json

    found: dict[str, tuple[str, Path]] = {}
    for path in sorted(REFERENCE_DIR.glob("*/config.json")):
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("_name_or_path")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(name, str) and name:
            found[name.lower()] = (name, path)
    return found


def reference_config(repo_id: str) -> tuple[dict[str, Any], str] | None:
    """(config.json, where it came from) of a hub id whose published shape this project ships, else None: the
    planner uses it before the Hugging Face cache or the hub, so `lf-tui plan` sizes it offline."""
    import json

    known = _references().get(repo_id.strip().lower())
    if known is None:
        return None
    name, path = known
    config = json.loads(path.read_text(encoding="utf-8"))
    return config, f"bundled reference shape of {name} ({path.parent.name}: its published config.json, sizes only)"
