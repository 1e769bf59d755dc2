"""Fixtures of the IA³ tests: the suite's own (an isolated cache, the run store, the learnable dataset, no
engine outliving its test) and tiny local models."""

from __future__ import annotations

import pytest

from tests.conftest import (  # noqa: F401  (the suite's fixtures: imported into this conftest, pytest registers them)
    _isolated_cache,
    _no_engine_outlives_its_test,
    learnable_dataset,
    store,
)
from tests.tiny_models import ModelFolders


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    """Tiny random models of each architecture, saved with the built-in tokenizer (built on first use)."""
    return ModelFolders(tmp_path_factory.mktemp("ia3-architectures"))
