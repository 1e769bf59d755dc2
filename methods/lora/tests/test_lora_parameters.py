"""LoRA parameters take effect: r and target_modules change the trainable count; unknown modules fail clearly."""

from __future__ import annotations

import pytest

from engine.errors import EngineError
from tests.engine_builders import built, trainable


def test_rank_and_target_modules_change_trainable_parameters() -> None:
    base = trainable("lora", r=4, target_modules=["q_proj", "v_proj"])
    assert trainable("lora", r=8, target_modules=["q_proj", "v_proj"]) == 2 * base
    assert trainable("lora", r=4, target_modules=["q_proj"]) < base
    assert trainable("lora", r=4, target_modules="all-linear") > base


def test_bias_and_modules_to_save_take_effect() -> None:
    _, _, model, _ = built("lora", modules_to_save=["lm_head"])
    assert any("modules_to_save" in n and p.requires_grad for n, p in model.named_parameters())


def test_missing_target_module_lists_the_existing_ones() -> None:
    with pytest.raises(EngineError) as info:
        built("lora", target_modules=["query", "v_proj"])
    assert info.value.kind == "config" and "['query']" in info.value.message
    assert "q_proj" in info.value.hint and "down_proj" in info.value.hint


def test_dropout_and_alpha_reach_the_peft_config() -> None:
    _, _, model, _ = built("lora", lora_dropout=0.3, lora_alpha=64, r=8)
    config = model.peft_config["default"]
    assert config.lora_dropout == 0.3 and config.lora_alpha == 64 and config.r == 8
