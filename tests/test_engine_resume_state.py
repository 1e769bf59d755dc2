"""The loop's state a resume restores or keeps right: the fp16 loss scale on the sharded path, a rank's missing
random state said aloud, no schedule step on an fp16-overflowed step, and full fine-tuning's trust_remote_code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from engine.protocol import Log
from tests.test_training_maths import make_trainer


def test_an_fp16_overflowed_step_updates_nothing_and_does_not_advance_the_schedule(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, method="lora", precision="fp16",
                           training={"max_steps": 10, "lr_scheduler": "linear", "warmup_steps": 0})
    assert trainer.scaler is not None
    trainer.scaler.scale(torch.ones(()))  # the scaler starts scaling with the step's first loss
    lrs, before = trainer.scheduler.get_last_lr(), [p.detach().clone() for p in trainer.params]
    for p in trainer.params:  # gradients that overflowed in fp16
        p.grad = torch.full_like(p, float("inf"))
    norm, _ = trainer._optimizer_step(1, 1.0)
    assert norm is None and all(torch.equal(a, b) for a, b in zip(before, trainer.params))
    assert trainer.scheduler.get_last_lr() == lrs  # as transformers' Trainer: a skipped step leaves the LR
    for p in trainer.params:
        p.grad = torch.full_like(p, 1e-3)
    trainer._optimizer_step(2, 1.0)
    assert trainer.scheduler.get_last_lr()[0] < lrs[0]  # a real update advances it


class _Accelerator:
    """The part of accelerate's Accelerator the sharded resume uses (FSDP needs GPUs; its shards are its own)."""

    num_processes, process_index = 1, 0

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def load_state(self, path: str) -> None:
        self.loaded.append(path)


def test_the_sharded_resume_restores_the_loss_scale_and_says_a_missing_rank_random_state(tmp_path: Path) -> None:
    from engine.distributed_trainer import SHARDED_STATE, DistributedTrainer

    source = make_trainer(tmp_path, method="lora", precision="fp16", training={"max_steps": 2})
    source.scaler = torch.amp.GradScaler("cpu", init_scale=512.0)  # a scale no fresh scaler starts with
    folder = source.save()
    (folder / SHARDED_STATE).mkdir()  # accelerate's shards (model and optimizer), loaded by load_state
    events: list[Any] = []
    target = make_trainer(tmp_path / "again", method="lora", precision="fp16", training={"max_steps": 2},
                          events=events)
    assert target.scaler is not None and target.scaler.get_scale() != 512.0
    sharded = DistributedTrainer.__new__(DistributedTrainer)  # the resume alone: no process group
    sharded.__dict__.update(target.__dict__)
    sharded.accelerator, sharded.rank, sharded.sharded = _Accelerator(), 0, True
    sharded.resume_from(folder)
    assert sharded.accelerator.loaded == [str(folder / SHARDED_STATE)]
    assert sharded.scaler.get_scale() == 512.0  # the loss scale resumes where it was
    assert sharded.state.step == json.loads((folder / "trainer_state.json").read_text())["step"]
    (warning,) = [e for e in events if isinstance(e, Log) and e.level == "warning"]
    assert "no random state for rank 0 (rng-rank0.pt is missing)" in warning.message


def _remote_code_model(folder: Path) -> None:
    """A saved model whose class lives in its own folder's code (auto_map): it loads only with trust_remote_code."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True)
    (folder / "custom_llama.py").write_text(
        "from transformers import LlamaConfig, LlamaForCausalLM\n\n\n"
        "class CustomConfig(LlamaConfig):\n    model_type = 'custom_llama'\n\n\n"
        "class CustomForCausalLM(LlamaForCausalLM):\n    config_class = CustomConfig\n")
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    document = json.loads((folder / "config.json").read_text())
    document.update(model_type="custom_llama", architectures=["CustomForCausalLM"],
                    auto_map={"AutoConfig": "custom_llama.CustomConfig",
                              "AutoModelForCausalLM": "custom_llama.CustomForCausalLM"})
    (folder / "config.json").write_text(json.dumps(document))


def test_full_finetune_loads_its_trained_weights_with_the_runs_trust_remote_code(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from methods.full_finetune.implementation import load_trained

    folder = tmp_path / "weights"
    _remote_code_model(folder)
    base = SimpleNamespace(dtype=torch.float32)
    ctx = SimpleNamespace(cfg=SimpleNamespace(trust_remote_code=True))
    model = load_trained(base, folder, ctx)
    assert type(model).__name__ == "CustomForCausalLM"  # the folder's own class, as the run trained it
