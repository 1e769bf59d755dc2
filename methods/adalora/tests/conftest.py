"""Fixtures of the AdaLoRA tests: the suite's own (an isolated cache, the run store, the learnable dataset, no
engine outliving its test) and tiny local models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import (  # noqa: F401  (the suite's fixtures: imported into this conftest, pytest registers them)
    _isolated_cache,
    _no_engine_outlives_its_test,
    learnable_dataset,
    store,
)
from tests.tiny_models import ModelFolders


@pytest.fixture(scope="session")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 (Conv1D layers, fused c_attn) saved with the built-in tokenizer."""
    return ModelFolders(tmp_path_factory.mktemp("adalora-models"))["gpt2"]
