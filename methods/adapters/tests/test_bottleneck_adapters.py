"""Bottleneck adapters: size options change the trainable count, start as identity, save and reload exactly."""

from __future__ import annotations

import torch

from methods.adapters import implementation as adapters
from tests.engine_builders import built, trainable


def test_bottleneck_size_and_reduction_factor_and_placement() -> None:
    small, large = trainable("adapters", bottleneck_size=8), trainable("adapters", bottleneck_size=16)
    assert large > small > 0
    assert trainable("adapters", reduction_factor=8) == trainable("adapters", bottleneck_size=16)  # 128/8
    assert trainable("adapters", bottleneck_size=8, placement="both") == 2 * small


def test_base_is_frozen_and_adapters_start_as_identity() -> None:
    from engine.models import load_base_model

    cfg, _, model, _ = built("adapters", bottleneck_size=8)
    assert all(not p.requires_grad for n, p in model.named_parameters() if ".adapter_" not in n)
    base = load_base_model(cfg, None)
    ids = torch.tensor([[1, 20, 30, 40]])
    assert torch.allclose(model(ids).logits, base(ids).logits, atol=1e-5)


def test_save_and_reload(tmp_path) -> None:
    from engine.models import load_base_model

    cfg, _, model, impl = built("adapters", bottleneck_size=8, non_linearity="gelu")
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    impl.save(model, tmp_path)
    assert (tmp_path / adapters.WEIGHTS_FILE).exists() and (tmp_path / adapters.CONFIG_FILE).exists()
    reloaded = impl.load_trained(load_base_model(cfg, None), tmp_path)
    ids = torch.tensor([[1, 20, 30, 40]])
    assert torch.allclose(model(ids).logits, reloaded(ids).logits, atol=1e-6)
