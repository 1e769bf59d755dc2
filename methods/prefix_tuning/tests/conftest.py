"""Fixtures of the prefix-tuning tests: the suite's own (an isolated cache, the run store, the learnable dataset, and
no engine outliving its test)."""

from __future__ import annotations

from tests.conftest import (  # noqa: F401  (fixtures: imported into this conftest, pytest registers them)
    _isolated_cache,
    _no_engine_outlives_its_test,
    learnable_dataset,
    store,
)
