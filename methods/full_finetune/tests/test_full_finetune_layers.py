"""Full fine-tuning trains what the config says."""

from __future__ import annotations

import pytest

from engine.errors import EngineError
from tests.engine_builders import built, trainable


def test_layer_selection_and_freezing() -> None:
    everything = trainable("full_finetune")
    one_layer = trainable("full_finetune", train_layers=[3])
    assert 0 < one_layer < everything
    _, _, model, _ = built("full_finetune", freeze_embeddings=True, freeze_patterns=["self_attn"])
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    assert not grads["model.embed_tokens.weight"] and grads["lm_head.weight"]
    assert not any(v for n, v in grads.items() if "self_attn" in n)


def test_out_of_range_layer_is_a_config_error() -> None:
    with pytest.raises(EngineError, match="out of range"):
        built("full_finetune", train_layers=[9])
