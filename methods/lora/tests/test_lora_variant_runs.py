"""Real engine runs with the variants on the built-in model and on a locally built GPT-NeoX: they train, save, reload
in stock PEFT and generate; a PiSSA run resumed from a checkpoint ends with the weights of the uninterrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.launcher import launch
from engine.protocol import Finished, RunStarted, Step
from methods.lora.tests.support import base_model, config, logits, stock_reload
from tests.conftest import train

VARIANTS: dict[str, Any] = {"use_dora": True, "use_rslora": True, "loraplus_lr_ratio": 16}


def saved(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def check_run(store, cfg, dataset) -> tuple[Any, list[str]]:
    from engine.generate import generate

    run, events, rc = train(store, cfg, dataset)
    assert rc == 0, (run.path / "engine.log").read_text()[-3000:]
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert len(losses) == cfg.training.max_steps and all(torch.isfinite(torch.tensor(losses)))
    reloaded = stock_reload(cfg, run.weights_dir)  # stock PEFT on a fresh original base
    assert not torch.allclose(logits(reloaded), logits(base_model(cfg)), atol=1e-4)
    assert isinstance(generate(run, "Say the greeting.", max_new_tokens=3)["completion"], str)
    log = [getattr(e, "message", "") for e in events if e.type == "log"]
    return run, log


def test_dora_rslora_loraplus_train_on_the_builtin_model(store, learnable_dataset) -> None:
    cfg = config("lora", r=8, lora_alpha=8, training={"learning_rate": 1e-3}, **VARIANTS)
    run, log = check_run(store, cfg, learnable_dataset)
    assert any("LoRA+" in m and "0.016" in m for m in log) and any("DoRA" in m for m in log), log
    assert any("lora_magnitude_vector" in k for k in saved(run.weights_dir))


def test_pissa_with_the_variants_trains_on_gpt_neox(store, learnable_dataset, tiny_models) -> None:
    cfg = config("lora", base_model=str(tiny_models["gpt_neox"]), r=4, lora_alpha=4, init_lora_weights="pissa",
                 training={"learning_rate": 1e-3}, **VARIANTS)
    run, log = check_run(store, cfg, learnable_dataset)
    assert any("PiSSA" in m and "rank 8" in m for m in log), log
    weights = saved(run.weights_dir)
    a = next(t for k, t in weights.items() if "lora_A" in k)
    assert a.shape[0] == 8 and any("lora_magnitude_vector" in k for k in weights)  # converted: rank 2r, DoRA kept


def test_a_resumed_pissa_run_continues_from_the_same_weights(store, learnable_dataset) -> None:
    cfg = config("lora", r=4, lora_alpha=8, init_lora_weights="pissa", training={"max_steps": 3, "learning_rate": 1e-3},
                 monitoring={"save_steps": 2}, lora_dropout=0.1)
    run, events, rc = train(store, cfg, learnable_dataset)
    assert rc == 0, (run.path / "engine.log").read_text()[-3000:]
    uninterrupted = saved(run.weights_dir)
    checkpoint = run.latest_checkpoint()
    assert checkpoint is not None and checkpoint.name == "step-2"  # saved every 2 steps; the last step writes weights/
    resumed = launch(run, resume=True)
    events = list(resumed.events())
    assert resumed.wait(120) == 0
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.resumed_from_step == 2 and [e.step for e in events if isinstance(e, Step)] == [3]
    again = saved(run.weights_dir)
    assert again.keys() == uninterrupted.keys()
    assert all(torch.allclose(again[k], uninterrupted[k], atol=1e-6) for k in again)
