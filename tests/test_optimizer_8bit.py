"""bitsandbytes' 8-bit AdamW as training.optimizer: one byte per moment in the optimizer, two in the plan."""

from __future__ import annotations

import pytest
import torch

from engine.optim import build_optimizer
from methods.memory_plan import optimizer_bytes_per_param
from tests.conftest import make_config
from tests.engine_builders import built


@pytest.mark.parametrize("name", ["adamw_8bit", "paged_adamw_8bit"])
def test_eight_bit_adamw_keeps_uint8_moments_and_trains(name: str) -> None:
    pytest.importorskip("bitsandbytes")
    cfg, _, model, impl = built("lora", target_modules=["q_proj", "v_proj"], r=64, lora_alpha=128)
    training = make_config("lora", training={"optimizer": name, "learning_rate": 1e-2}).training
    optimizer = build_optimizer(model, training, impl, cfg)
    assert "8bit" in type(optimizer).__name__
    params = [p for p in model.parameters() if p.requires_grad]
    big = max(params, key=lambda p: p.numel())  # bitsandbytes keeps tensors under 4096 values in 32 bits: r 64 x 128
    before = big.detach().clone()
    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46]])
    for _ in range(2):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert not torch.equal(before, big.detach())
    assert optimizer.state[big]["state1"].dtype == torch.uint8  # the first moment, one byte a value
    assert optimizer_bytes_per_param(name) == 2.0 < optimizer_bytes_per_param("adamw") == 8.0
