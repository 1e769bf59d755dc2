"""The embedded default model `builtin:tiny-llama`: a small random Llama and a shipped tokenizer, no download."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.builtin_spec import (  # noqa: F401  (re-exported: the engine's modules import them from here)
    ASSETS,
    BUILD_VERSION,
    BUILTIN_MODELS,
    BUILTIN_PREFIX,
    CHAT_TEMPLATE,
    TINY_CONFIG,
    SpecialTokenIds,
    TinySizes,
    cache_dir,
    is_builtin,
)
from lf_common.files import follow_umask


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
        follow_umask(tmp)  # mkdtemp makes 0700 and safetensors 0600: a shared cache must be readable by the team
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
