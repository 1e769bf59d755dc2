"""The engine reads a run's stored config back: keys it no longer knows are ignored with a warning (they were refused
when the run was made), never a run that cannot train or resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.run_store import RunDir
from engine.runner import load_run_config
from tests.conftest import make_config


def test_a_stored_config_with_an_unknown_key_trains_and_says_so(tmp_path: Path) -> None:
    document = make_config("lora", training={"max_steps": 3}).model_dump(mode="json")
    document["training"]["stage"] = "dpo"  # a key this version does not know
    (tmp_path / "config.json").write_text(json.dumps(document))
    said: list[str] = []
    cfg = load_run_config(RunDir(tmp_path), said.append)
    assert cfg.training.max_steps == 3
    (warning,) = said
    assert "config.json" in warning and "training.stage" in warning and "unknown key" in warning
    document["training"]["max_steps"] = "many"  # a wrong value is still an error
    (tmp_path / "config.json").write_text(json.dumps(document))
    with pytest.raises(EngineError, match="training.max_steps"):
        load_run_config(RunDir(tmp_path))
