"""Tiny random models of real architectures, built locally with their transformers config classes (test helper)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# widths are multiples of 64, as in every real model: 4-bit quantisation works in blocks of 64 input features
SIZES = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", dict(SIZES, num_key_value_heads=2)),
    "qwen2": ("Qwen2Config", dict(SIZES, num_key_value_heads=2)),
    "gpt2": ("GPT2Config", dict(n_embd=64, n_layer=2, n_head=4, n_positions=256)),
    "gpt_neox": ("GPTNeoXConfig", dict(SIZES)),
    "phi3": ("Phi3Config", dict(SIZES, num_key_value_heads=2)),
    "mistral": ("MistralConfig", dict(SIZES, num_key_value_heads=2)),
    "gemma": ("GemmaConfig", dict(SIZES, num_key_value_heads=2, head_dim=8)),
}


def save_tiny_model(folder: Path, arch: str) -> Path:
    """A tiny random `arch` model saved with the built-in tokenizer into `folder` (once)."""
    import transformers

    from engine.builtin_model import save_random_model, special_token_ids, tiny_tokenizer

    if not (folder / "config.json").exists():
        config_class, sizes = ARCHITECTURES[arch]
        tokenizer = tiny_tokenizer()
        config = getattr(transformers, config_class)(**special_token_ids(tokenizer), **sizes)
        save_random_model(folder, config, tokenizer)
    return folder


class ModelFolders(dict[str, Path]):
    """arch -> the folder of a tiny random model of that architecture under `root`, built on first use."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, arch: str) -> Path:
        self[arch] = save_tiny_model(self.root / arch, arch)
        return self[arch]
