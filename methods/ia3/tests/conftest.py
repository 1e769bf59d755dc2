"""Fixtures of the IA³ tests: an isolated cache and run store, the learnable dataset, tiny models per architecture."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.run_store import RunStore
from methods.ia3.tests.support import ARCHITECTURES
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
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random models of each architecture, saved with the built-in tokenizer (built on first use)."""
    import transformers

    from engine.builtin_model import save_random_model, special_token_ids, tiny_tokenizer

    root = tmp_path_factory.mktemp("ia3-architectures")

    class Folders(dict):
        def __missing__(self, arch: str) -> Path:
            config_class, sizes = ARCHITECTURES[arch]
            tokenizer = tiny_tokenizer()
            config = getattr(transformers, config_class)(**special_token_ids(tokenizer), **sizes)
            save_random_model(root / arch, config, tokenizer)
            self[arch] = root / arch
            return root / arch

    return Folders()
