"""Fixtures of the AdaLoRA tests: an isolated cache and run store, the learnable dataset, a tiny GPT-2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.run_store import RunStore
from tests.conftest import LEARNABLE


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.setdefault("LF_TUI_CACHE", str(tmp_path_factory.mktemp("lf-tui-cache")))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture
def learnable_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "learnable.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    return path


@pytest.fixture(scope="session")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 (Conv1D layers, fused c_attn) saved with the built-in tokenizer."""
    import transformers

    from engine.builtin_model import save_random_model, special_token_ids, tiny_tokenizer

    folder = tmp_path_factory.mktemp("gpt2") / "model"
    tokenizer = tiny_tokenizer()
    config = transformers.GPT2Config(**special_token_ids(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=256)
    save_random_model(folder, config, tokenizer)
    return folder
