"""The preview/eval engine processes read a resolved config as the runner reads a run's config.json: leniently."""

from __future__ import annotations

import pytest

from engine.errors import EngineError
from engine.eval_process import load_config
from tests.conftest import make_config


def test_an_unknown_key_is_ignored_and_a_bad_value_still_refused() -> None:
    document = make_config("lora")
    dumped = document.model_dump(mode="json")
    cfg = load_config({**dumped, "training": {**dumped["training"], "stage": "dpo"}})  # a newer version's key
    assert cfg.method_name == "lora" and cfg.training.max_steps == document.training.max_steps
    with pytest.raises(EngineError) as caught:
        load_config({**dumped, "training": {**dumped["training"], "learning_rate": "fast"}})
    assert caught.value.kind == "config" and "learning_rate" in caught.value.message
