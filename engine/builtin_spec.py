"""The built-in model's name, sizes and cache place: what light modules (the memory planner) may read (no torch)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypedDict

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("tiny-llama",)
ASSETS = Path(__file__).resolve().parent / "assets"
TOKENIZER_FILE = ASSETS / "tiny_tokenizer.json"
BUILD_VERSION = "v3"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% if m['role'] == 'assistant' %}</s>"
    "{% endif %}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


class TinySizes(TypedDict):
    """The sizes of the built-in model (keyword arguments of LlamaConfig)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rms_norm_eps: float
    tie_word_embeddings: bool
    initializer_range: float


class SpecialTokenIds(TypedDict):
    """What a model config needs to match its tokenizer (keyword arguments of every *Config)."""

    vocab_size: int
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int | None


TINY_CONFIG = TinySizes(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5,
                        tie_word_embeddings=False, initializer_range=0.1)


def cache_dir() -> Path:
    return Path(os.environ.get("LF_TUI_CACHE") or Path.home() / ".cache" / "lf-tui")


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN_PREFIX)


def builtin_config(name: str) -> dict[str, Any] | None:
    """The config.json a built-in model has (or will have once built); None for an unknown name."""
    short = name[len(BUILTIN_PREFIX):]
    if short not in BUILTIN_MODELS:
        return None
    built = cache_dir() / "builtin" / f"{short}-{BUILD_VERSION}" / "config.json"
    if built.is_file():
        return dict(json.loads(built.read_text(encoding="utf-8")))
    tokenizer = json.loads(TOKENIZER_FILE.read_text(encoding="utf-8"))
    ids = [*tokenizer["model"]["vocab"].values(), *(t["id"] for t in tokenizer.get("added_tokens", []))]
    return {"model_type": "llama", "vocab_size": max(ids) + 1, **TINY_CONFIG}
