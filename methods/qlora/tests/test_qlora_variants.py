"""The LoRA variants on a 4-bit base (bitsandbytes' CPU kernels): DoRA, rsLoRA and LoRA+ train, save and reload in
stock PEFT; what the quantised base cannot take fails clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.errors import EngineError
from engine.protocol import Finished, Step
from methods.lora.tests.support import base_model, build, config, logits, stock_reload, train_steps
from tests.conftest import train

pytest.importorskip("bitsandbytes")
VARIANTS: dict[str, Any] = {"use_dora": True, "use_rslora": True, "loraplus_lr_ratio": 16}


def test_dora_rslora_loraplus_on_4_bits_train_save_and_reload(tmp_path: Path) -> None:
    cfg = config("qlora", r=8, lora_alpha=8, training={"learning_rate": 1e-3, "lr_scheduler": "constant"}, **VARIANTS)
    model, impl = build(cfg)
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
    assert any("lora_magnitude_vector" in n and p.requires_grad for n, p in model.named_parameters())
    optimizer = train_steps(model, impl, cfg, steps=2)
    assert sorted({round(g["lr"] / optimizer.param_groups[0]["lr"]) for g in optimizer.param_groups}) == [1, 16]
    logits(model)  # an eval forward in between, as the engine's evaluation does, then more training
    train_steps(model, impl, cfg, steps=1)
    trained = logits(model)
    impl.save(model, tmp_path)
    reloaded = stock_reload(cfg, tmp_path)  # onto a freshly quantised base
    assert torch.allclose(logits(reloaded), trained, atol=1e-4)
    assert not torch.allclose(trained, logits(base_model(cfg)), atol=1e-3)


def test_a_run_with_dora_and_evaluations_trains_gpt_neox_and_generates(store, learnable_dataset, tiny_models) -> None:
    """GPT-NeoX's layers have biases: bitsandbytes' CPU fast path (taken by an eval forward) broke training after it."""
    from engine.generate import generate

    cfg = config("qlora", base_model=str(tiny_models["gpt_neox"]), r=4, lora_alpha=8, use_dora=True,
                 training={"learning_rate": 1e-3, "max_steps": 3}, monitoring={"eval_steps": 2}, data={"eval_split": 0.2})
    run, events, rc = train(store, cfg, learnable_dataset)
    assert rc == 0, (run.path / "engine.log").read_text()[-3000:]
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    assert len([e for e in events if isinstance(e, Step)]) == 3 and any(e.type == "eval" for e in events)
    assert not torch.allclose(logits(stock_reload(cfg, run.weights_dir)), logits(base_model(cfg)), atol=1e-4)
    assert isinstance(generate(run, "Say the greeting.", max_new_tokens=3)["completion"], str)


def test_dora_on_8_bits_on_cpu_is_unsupported_hardware() -> None:
    with pytest.raises(EngineError) as info:
        build(config("qlora", r=4, lora_alpha=8, use_dora=True, load_in_4bit=False))
    assert info.value.kind == "unsupported_hardware" and "load_in_4bit" in info.value.hint
