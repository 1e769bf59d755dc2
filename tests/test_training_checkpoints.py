"""Checkpoints: rotation, best-eval weights, early stopping, weights stored once, safe loading, time across resume."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from engine.protocol import Checkpoint, Eval, Finished, Log, RunStarted, Step
from tests.conftest import ROOT, make_config, start_run, train
from tests.test_training_maths import make_trainer


def _checkpoints(run) -> list[str]:
    return sorted((p.name for p in run.checkpoints_dir.iterdir()), key=lambda n: int(n.split("-")[1]))


def test_save_total_limit_keeps_the_newest_checkpoints(store, learnable_dataset) -> None:
    cfg = make_config("lora", training={"max_steps": 6}, monitoring={"save_steps": 1, "save_total_limit": 2})
    run, events, rc = train(store, cfg, learnable_dataset)
    assert rc == 0
    assert [e.step for e in events if isinstance(e, Checkpoint)] == [1, 2, 3, 4, 5]
    assert _checkpoints(run) == ["step-4", "step-5"]
    summary = events[-1].summary
    assert summary["weights_from"] == "final" and summary["weights_step"] == 6 and summary["stopped_early"] is False
    assert (run.checkpoints_dir / "step-5" / "trainable.pt").is_file()  # adapters: weights/ names them otherwise


def test_early_stopping_keeps_the_best_eval_weights(store, learnable_dataset) -> None:
    # SGD at a constant 1.0: the eval loss falls for a step or two, then climbs (the run is diverging slowly)
    cfg = make_config("full_finetune", training={"max_steps": 30, "learning_rate": 1.0, "optimizer": "sgd",
                                                  "max_grad_norm": 0.0, "lr_scheduler": "constant"},
                      hardware={"mixed_precision": "no"}, data={"eval_split": 0.2},
                      monitoring={"eval_steps": 1, "save_steps": 1, "save_total_limit": 1,
                                  "early_stopping_patience": 2})
    run, events, rc = train(store, cfg, learnable_dataset)
    assert rc == 0, [e for e in events if e.type == "error"]
    evals = [e for e in events if isinstance(e, Eval)]
    best = min(evals, key=lambda e: e.eval_loss)
    last = evals[-1]
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.status == "completed"
    summary = finished.summary
    assert summary["stopped_early"] is True and last.step < 30
    assert [e.step for e in evals][-3:] == [best.step, best.step + 1, best.step + 2] == [last.step - 2,
                                                                                         last.step - 1, last.step]
    assert any(isinstance(e, Log) and e.message.startswith(f"stopping early at step {last.step}") for e in events)
    assert summary["weights_from"] == "best_eval" and summary["weights_step"] == best.step
    assert summary["best_eval_loss"] == best.eval_loss and summary["final_eval_loss"] == last.eval_loss
    assert _checkpoints(run) == [f"step-{best.step}", f"step-{last.step}"]  # the newest 1 plus the best
    kept = run.checkpoints_dir / f"step-{best.step}"
    assert not (kept / "trainable.pt").exists()  # full fine-tuning: the weights are stored once
    saved = sorted(p.name for p in run.weights_dir.iterdir())
    assert saved == sorted(p.name for p in (kept / "weights").iterdir())
    for name in saved:
        assert (run.weights_dir / name).read_bytes() == (kept / "weights" / name).read_bytes()
    assert len([e for e in events if isinstance(e, Step)]) == last.step  # no extra final eval or step


def test_full_finetune_resumes_from_weights_stored_once(tmp_path: Path) -> None:
    first = make_trainer(tmp_path, training={"max_steps": 2, "learning_rate": 1e-3})
    first.fit()
    folder = first.save()
    assert not (folder / "trainable.pt").exists() and (folder / "weights").is_dir()
    second = make_trainer(tmp_path, training={"max_steps": 2, "learning_rate": 1e-3})
    assert any(not torch.equal(a, b) for a, b in zip(first.params, second.params))
    second.resume_from(folder)
    assert all(torch.equal(a, b) for a, b in zip(first.params, second.params)) and second.state.step == 2
    assert second.optimizer.state_dict()["state"].keys() == first.optimizer.state_dict()["state"].keys()


def test_a_resumed_loop_continues_exactly(tmp_path: Path) -> None:
    """Same seed: steps 4-6 after a cancel at step 3 and a resume equal those of an uninterrupted run (dropout on)."""
    from engine.control import Control
    from engine.errors import Cancelled

    settings = {"training": {"max_steps": 6, "batch_size": 2, "gradient_accumulation_steps": 2},
                "method_specific": {"lora_dropout": 0.2}}
    whole: list = []
    make_trainer(tmp_path / "a", method="lora", events=whole, **settings).fit()
    control, first = Control(), []

    def emit(event) -> None:
        first.append(event)
        if isinstance(event, Step) and event.step == 3:
            control.request_cancel("test")

    cut = make_trainer(tmp_path / "b", method="lora", control=control, **settings)
    cut.emit = emit
    try:
        cut.fit()
    except Cancelled:
        pass
    folder = cut.checkpoints_dir / "step-3"
    rest: list = []
    resumed = make_trainer(tmp_path / "b", method="lora", events=rest, **settings)
    resumed.resume_from(folder)
    resumed.fit()
    losses = [(e.step, e.loss, e.grad_norm) for e in whole if isinstance(e, Step)]
    assert [(e.step, e.loss, e.grad_norm) for e in first if isinstance(e, Step)] == losses[:3]
    assert [(e.step, e.loss, e.grad_norm) for e in rest if isinstance(e, Step)] == losses[3:]


def test_every_torch_load_is_weights_only() -> None:
    calls = []
    for path in [*ROOT.glob("engine/*.py"), *ROOT.glob("methods/**/*.py"), *ROOT.glob("lf_tui/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\((.*?)\)\n", text, re.S):
            calls.append((path.name, match.group(1)))
    assert calls  # the checkpoint loader is found
    assert all("weights_only=True" in args for _, args in calls), calls


def test_training_time_survives_cancel_and_resume(store, learnable_dataset) -> None:
    cfg = make_config("lora", training={"max_steps": 400})
    run, proc = start_run(store, cfg, learnable_dataset)
    first = []
    for event in proc.events():
        if isinstance(event, Step):
            first.append(event)
            if event.step == 8:
                proc.cancel()
    assert proc.wait(60) == 130
    before = first[-1].elapsed_s
    cfg_short = run.config()
    cfg_short["training"]["max_steps"] = first[-1].step + 2
    from engine.launcher import launch
    from methods.config_file import write_json

    write_json(run.file("config.json"), cfg_short)
    resumed = launch(run, resume=True)
    events = list(resumed.events())
    assert resumed.wait(120) == 0
    assert next(e for e in events if isinstance(e, RunStarted)).resumed_from_step == first[-1].step
    steps = [e for e in events if isinstance(e, Step)]
    assert steps[0].elapsed_s > before and steps[-1].elapsed_s >= steps[0].elapsed_s
    summary = events[-1].summary
    assert summary["training_time_s"] >= steps[-1].elapsed_s


def test_settings_that_cannot_work_are_warned_about() -> None:
    from methods.validation import validate_config

    def warned(monitoring: dict, data: dict | None = None) -> set[str]:
        report = validate_config({"method": "lora", "monitoring": monitoring, "data": data or {}}).report
        assert report.ok
        return {w.path for w in report.warnings}

    assert "monitoring.early_stopping_patience" in warned({"early_stopping_patience": 2, "eval_steps": 0})
    assert "monitoring.early_stopping_patience" in warned({"early_stopping_patience": 2}, {"eval_split": 0})
    assert "monitoring.save_steps" in warned({"eval_steps": 10, "save_steps": 0})
    assert "monitoring.loss_spike_factor" in warned({"loss_spike_factor": 0.9})
    assert not warned({"early_stopping_patience": 2, "eval_steps": 10, "save_steps": 10, "loss_spike_factor": 4})
