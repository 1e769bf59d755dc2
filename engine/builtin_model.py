"""The embedded default model `builtin:tiny-llama`: a small random Llama and a shipped tokenizer, no download."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, TypedDict

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("tiny-llama",)
ASSETS = Path(__file__).resolve().parent / "assets"
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


def builtin_path(name: str) -> Path:
    """The folder of a built-in model, building it on first use (deterministic: seed 0)."""
    short = name[len(BUILTIN_PREFIX):]
    if short not in BUILTIN_MODELS:
        from engine.errors import EngineError

        raise EngineError("model", f"unknown built-in model {name!r}",
                          f"built-in models: {', '.join(BUILTIN_PREFIX + m for m in BUILTIN_MODELS)}")
    target = cache_dir() / "builtin" / f"{short}-{BUILD_VERSION}"
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{short}-", dir=target.parent))
    try:
        build_tiny_llama(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def tiny_tokenizer() -> Any:
    """The shipped 512-token BPE tokenizer with its special tokens and chat template (what tiny models use)."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(ASSETS / "tiny_tokenizer.json"), bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>", model_max_length=2048)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def special_token_ids(tokenizer: Any) -> SpecialTokenIds:
    """vocab_size and the bos/eos/pad ids a model config needs to match `tokenizer`."""
    return SpecialTokenIds(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def save_random_model(folder: Path, config: Any, tokenizer: Any, seed: int = 0) -> None:
    """A causal LM with random weights from `config` (any architecture), saved with `tokenizer` to `folder`."""
    import torch
    from transformers import AutoModelForCausalLM

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    torch.random.set_rng_state(generator_state)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def build_tiny_llama(folder: Path) -> None:
    """Write a random-weight Llama and its tokenizer to `folder` with save_pretrained."""
    from transformers import LlamaConfig

    tokenizer = tiny_tokenizer()
    save_random_model(folder, LlamaConfig(**special_token_ids(tokenizer), **TINY_CONFIG), tokenizer)
