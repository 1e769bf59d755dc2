"""Fixtures of the QLoRA tests: an isolated cache and run store, the learnable dataset, tiny local models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.run_store import RunStore
from methods.lora.tests.support import save_tiny_model
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
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """arch -> the folder of a tiny random model of that architecture (built on first use)."""
    root = tmp_path_factory.mktemp("qlora-architectures")

    class Folders(dict):
        def __missing__(self, arch: str) -> Path:
            self[arch] = save_tiny_model(root / arch, arch)
            return self[arch]

    return Folders()
