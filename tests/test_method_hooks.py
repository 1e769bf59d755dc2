"""The contract's optional hooks are called by the engine: the method's optimizer, its loss term, its per-step
figures (in the step events, the run state, the summary's history and its rows) and its summary figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.protocol import Step
from engine.run_store import SUMMARY
from lf_tui.present import run_text
from lf_tui.run_state import RunState
from methods.catalogue import METHODS_DIR, METHODS_PATH_ENV
from tests.conftest import make_config

HOOKED = '''"""LoRA with every optional hook overridden, recording what the engine calls."""

import torch

from methods.lora.implementation import Lora


class Hooked(Lora):
    def __init__(self):
        self.penalties = 0
        self.optimizer = None

    def build_optimizer(self, model, cfg, optimizer_cls, **optimizer_kwargs):
        self.optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                         lr=optimizer_kwargs["lr"])
        return self.optimizer

    def regularization(self, model):
        self.penalties += 1
        # a strong pull of every lora_A towards zero: visible in the saved weights
        return 5.0 * sum((p ** 2).sum() for n, p in model.named_parameters() if "lora_A" in n)

    def after_optimizer_step(self, model, step):
        assert any(p.grad is not None for p in model.parameters() if p.requires_grad), "called after zero_grad"
        return {"phase": step // 3, "constant": 7}

    def summary(self, model):
        return {"optimizer": type(self.optimizer).__name__, "penalties": self.penalties}


IMPLEMENTATION = Hooked()
'''


@pytest.fixture
def hooked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "roots"
    shutil.copytree(METHODS_DIR / "lora", root / "hooked", ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (root / "hooked" / "implementation.py").write_text(HOOKED, encoding="utf-8")
    monkeypatch.setenv(METHODS_PATH_ENV, str(root))
    return "hooked"


def _initial_lora_a_norm() -> float:
    from tests.engine_builders import built

    model = built("lora", target_modules=["q_proj", "v_proj"])[2]  # seeded as the run is: the same initial A
    return float(sum(p.detach().float().norm() for n, p in model.named_parameters() if "lora_A" in n))


def _lora_a_norm(run_weights: Path) -> float:
    from tests.test_architectures import saved_tensors

    return float(sum(t.float().norm() for k, t in saved_tensors(run_weights).items() if "lora_A" in k))


def test_the_engine_calls_every_optional_hook(hooked: str, store, learnable_dataset) -> None:
    from tests.test_architectures import run_in_process

    training = {"max_steps": 7, "learning_rate": 1e-2, "lr_scheduler": "constant", "max_grad_norm": 0}
    cfg = make_config(hooked, training=training, method_specific={"target_modules": ["q_proj", "v_proj"]})
    run, events = run_in_process(store, cfg, learnable_dataset)
    assert events[-1].type == "finished" and events[-1].status == "completed", events[-3:]
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.method_metrics for e in steps] == [{"phase": s // 3, "constant": 7} for s in range(1, 8)]
    summary = json.loads((run.path / SUMMARY).read_text())
    history = {"phase": [[1, 0], [3, 1], [6, 2]], "constant": [[1, 7]]}
    assert summary["method_metrics"] == history  # a point per change
    assert summary["method"] == {"optimizer": "SGD", "penalties": 7}  # once per optimizer step
    state = RunState()
    for event in events:
        state.ingest(event)
    assert state.method_metrics == history  # the run view's history is the summary's
    rows = dict(run_text.summary_rows(summary))
    assert rows["phase"] == "0 (step 1) → 1 (step 3) → 2 (step 6)" and rows["penalties"] == "7"
    assert run_text.method_lines(state.method_metrics)[0] == "phase: 0 (step 1) → 1 (step 3) → 2 (step 6)"
    assert "phase 2" in run_text.step_line(steps[-1])
    # the penalty's gradient (10 A, at lr 1e-2 with SGD) shrinks every lora_A by about 10% a step
    assert _lora_a_norm(run.weights_dir) < 0.7 * _initial_lora_a_norm()


def test_a_method_without_hooks_reports_no_figures(store, learnable_dataset) -> None:
    from tests.test_architectures import run_in_process

    run, events = run_in_process(store, make_config("adapters", training={"max_steps": 2}), learnable_dataset)
    assert all(e.method_metrics == {} for e in events if isinstance(e, Step))
    summary = json.loads((run.path / SUMMARY).read_text())
    assert "method_metrics" not in summary and "method" not in summary
    # the memory planner's estimate travels with the run: in run_started, the summary and its peak-memory row
    assert events[0].planned_peak_bytes > 0
    assert summary["planned_peak_mb"] == round(events[0].planned_peak_bytes / 2 ** 20, 1)
    runtime = summary["runtime_memory_mb"]  # on CPU the measured peak is the process's RSS, the runtime included
    assert 0 < runtime < summary["peak_memory_mb"]
    assert dict(run_text.summary_rows(summary))["peak memory"].endswith(
        f"({runtime:.0f} MB runtime + {summary['peak_memory_mb'] - runtime:.0f} MB training; planned "
        f"{summary['planned_peak_mb']:.0f} MB for training)")
    labels = [label for label, _ in run_text.summary_rows(summary)]
    assert labels[:9] == ["status", "total steps", "final loss", "best eval loss", "best perplexity", "weights",
                          "training time", "peak memory", "convergence"]
    assert set(labels[9:]) <= {"adapter size", "merged size", "first token", "tokens/s", "measured on"}


def test_the_methods_context_knows_the_planned_steps() -> None:
    from engine.optim import planned_steps

    training = make_config("lora", training={"max_steps": -1, "epochs": 2, "batch_size": 4,
                                             "gradient_accumulation_steps": 2}).training
    assert planned_steps(17, training) == 2 * 3  # ceil(ceil(17 / 4) / 2) = 3 steps an epoch
    assert planned_steps(17, make_config("lora", training={"max_steps": 5}).training) == 5


def test_a_step_the_loss_scaler_skips_is_not_a_step_for_the_method(tmp_path: Path) -> None:
    """fp16: an overflowed step is skipped by the scaler, and the method's per-step hook (AdaLoRA's importance
    scores read the gradients) is not called with infinite gradients."""
    import torch

    from tests.test_training_maths import make_trainer

    trainer = make_trainer(tmp_path, method="lora", precision="fp16", training={"max_steps": 3, "batch_size": 4})
    calls: list[int] = []
    trainer.impl = type("Counting", (type(trainer.impl),), {
        "after_optimizer_step": lambda self, model, step: calls.append(step) or {"seen": float(step)}})()
    assert trainer.scaler is not None
    trainer.accumulate([next(trainer._loader([[0, 1]]))])
    for p in trainer.params:  # an overflow, as fp16 gives one
        p.grad = torch.full_like(p, float("inf"))
    _, figures = trainer._optimizer_step(1, 1.0)
    assert calls == [] and figures == {}  # skipped: no hook
    trainer.accumulate([next(trainer._loader([[0, 1]]))])
    _, figures = trainer._optimizer_step(2, 1.0)
    assert calls == [2] and figures == {"seen": 2.0}
