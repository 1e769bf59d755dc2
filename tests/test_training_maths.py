"""Loop maths on the built-in model, in process: accumulation equals one batch, warm-up, loss scaling, NaN loss."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.batching import make_batch
from engine.control import Control
from engine.data import IGNORE, Example
from engine.errors import Diverged
from engine.models import resolve_runtime
from engine.runner import build
from engine.trainer import Trainer
from tests.conftest import make_config


def uneven_examples(n: int, seed: int = 0) -> list[Example]:
    """Random token sequences of very different lengths, each with a masked prompt of its own length."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        length = rng.choice([6, 9, 14, 23, 31, 40, 47, 60])
        ids = [rng.randrange(3, 500) for _ in range(length)]
        prompt = rng.randrange(1, length - 2)
        examples.append(Example(ids, [IGNORE] * prompt + ids[prompt:]))
    return examples


def make_trainer(tmp_path: Path, method: str = "full_finetune", examples: list[Example] | None = None,
                 precision: str | None = None, events: list | None = None, dtype: torch.dtype | None = None,
                 control: Control | None = None, **sections: Any) -> Trainer:
    """A Trainer exactly as the engine builds one (fp32 unless `precision`; weights cast to `dtype`)."""
    sections.setdefault("hardware", {}).setdefault("mixed_precision", "no")
    cfg = make_config(method, **sections)
    runtime = resolve_runtime(cfg)
    if precision:
        runtime.precision = precision
    tokenizer, model, impl = build(cfg, runtime, lambda level, message: None)
    if dtype is not None:
        model.to(dtype)
    emit = events.append if events is not None else (lambda event: None)
    return Trainer(model, impl, cfg, runtime, examples or uneven_examples(8), [], tokenizer.pad_token_id, "padded",
                   emit, control or Control(), tmp_path / "checkpoints", lambda values, step: None)


def _grads(trainer: Trainer) -> list[torch.Tensor]:
    grads = [p.grad.detach().clone() for p in trainer.params]
    trainer.optimizer.zero_grad(set_to_none=True)
    return grads


def test_four_micro_batches_of_two_give_the_gradient_of_one_batch_of_eight(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path)
    examples = trainer.train_set
    micro = [make_batch(examples, [2 * i, 2 * i + 1], "padded", trainer.pad_id) for i in range(4)]
    whole = make_batch(examples, list(range(8)), "padded", trainer.pad_id)
    counts = [int((b["labels"][:, 1:] != IGNORE).sum()) for b in micro]
    assert len(set(counts)) > 1  # uneven: a plain mean of micro-batch means would weight tokens unequally

    sum_micro, tokens_micro = trainer.accumulate(micro)
    accumulated = _grads(trainer)
    sum_whole, tokens_whole = trainer.accumulate([whole])
    one_batch = _grads(trainer)
    assert tokens_micro == tokens_whole == sum(counts)
    assert sum_micro / tokens_micro == pytest.approx(sum_whole / tokens_whole, rel=1e-5)
    for a, b in zip(accumulated, one_batch):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)

    # the usual mistake (mean of micro-batch means) is measurably different: this test can fail
    for batch in micro:
        (trainer.model(**batch, use_cache=False).loss / len(micro)).backward()
    naive = _grads(trainer)
    assert max(float((a - b).abs().max()) for a, b in zip(naive, one_batch)) > 1e-4


def test_logged_loss_equals_the_models_own_loss_on_one_batch(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, method="lora")
    batch = make_batch(trainer.train_set, list(range(8)), "padded", trainer.pad_id)
    loss_sum, tokens = trainer.accumulate([batch])
    trainer.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        reference = float(trainer.model(**batch, use_cache=False).loss)  # transformers' mean over targets
    assert loss_sum / tokens == pytest.approx(reference, rel=1e-5)


def _lrs(trainer: Trainer, steps: int) -> list[float]:
    seen = [trainer.scheduler.get_last_lr()[0]]
    for _ in range(steps):
        trainer.optimizer.step()
        trainer.scheduler.step()
        seen.append(trainer.scheduler.get_last_lr()[0])
    return seen


def test_constant_schedule_honours_warmup(tmp_path: Path) -> None:
    warm = make_trainer(tmp_path, method="lora", training={"lr_scheduler": "constant", "warmup_steps": 4,
                                                           "learning_rate": 1e-3, "max_steps": 10})
    assert _lrs(warm, 6) == pytest.approx([0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    flat = make_trainer(tmp_path, method="lora", training={"lr_scheduler": "constant", "learning_rate": 1e-3})
    assert _lrs(flat, 3) == pytest.approx([1e-3] * 4)


def test_fp16_loss_scaling_trains_and_its_state_is_checkpointed(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, method="lora", precision="fp16", training={"max_steps": 3, "batch_size": 4},
                           monitoring={"save_steps": 0})
    assert trainer.scaler is not None and trainer.scaler.is_enabled()
    trainer.fit()
    assert trainer.scaler is not None
    scale = trainer.scaler.get_scale()
    trainer.scaler.update(scale / 8)  # a scale no fresh scaler starts with
    folder = trainer.save()
    assert (folder / "scaler.pt").is_file()
    resumed = make_trainer(tmp_path, method="lora", precision="fp16", training={"max_steps": 3, "batch_size": 4})
    assert resumed.scaler is not None and resumed.scaler.get_scale() != scale / 8
    resumed.resume_from(folder)
    assert resumed.scaler.get_scale() == scale / 8 and resumed.state.step == 3
    fp32 = make_trainer(tmp_path / "fp32", method="lora", training={"max_steps": 1})
    assert fp32.scaler is None and not (fp32.save() / "scaler.pt").exists()


def test_a_nan_loss_stops_before_any_update_and_nan_weights_are_never_saved(tmp_path: Path) -> None:
    events: list = []
    trainer = make_trainer(tmp_path, events=events, training={"max_steps": 3})
    with torch.no_grad():
        trainer.model.lm_head.weight[7, 0] = float("nan")  # every position's logit for token 7 becomes NaN
    before = [p.detach().clone() for p in trainer.params]
    with pytest.raises(Diverged, match="at step 1: the loss became NaN") as info:
        trainer.fit()
    assert info.value.step == 1 and "no checkpoint was saved" in info.value.message
    for old, new in zip(before, trainer.params):
        assert torch.equal(old.nan_to_num(), new.detach().nan_to_num())  # the optimizer never stepped
    assert trainer.state.step == 0 and not events
    with pytest.raises(Diverged, match="weights became NaN"):
        trainer.save()
    assert not (tmp_path / "checkpoints" / "step-0").exists()


def test_bf16_weights_train_without_autocast_or_loss_scaling(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, precision="fp16", dtype=torch.bfloat16, training={"max_steps": 2})
    assert trainer.half_weights and trainer.scaler is None  # fp16 loss scaling refuses half-precision gradients
    assert not isinstance(trainer._autocast(), torch.autocast)
    before = [p.detach().clone() for p in trainer.params]
    trainer.fit()
    assert trainer.state.step == 2 and all(p.dtype == torch.bfloat16 for p in trainer.params)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.params))
    assert all(isinstance(x, float) and x == x for x in trainer.state.losses)
