"""Divergence is a result: a NaN loss or a loss spike ends the run `failed` with a `diverged` error, strict JSON."""

from __future__ import annotations

import json
import math

from engine.divergence import DivergenceGuard
from engine.errors import Diverged
from engine.protocol import Error, Eval, Finished, Step, parse_event
from tests.conftest import make_config, train


def _no_nan(text: str) -> None:
    raise ValueError(f"non-standard JSON constant {text}")


def _strict_lines(path) -> list[dict]:
    """Every line of events.jsonl parsed by a JSON parser that refuses NaN and Infinity."""
    return [json.loads(line, parse_constant=_no_nan) for line in path.read_text().splitlines()]


def test_a_real_nan_divergence_fails_the_run_and_keeps_the_last_good_checkpoint(store) -> None:
    # Full fine-tuning with SGD at a constant learning rate 1.0 and no clipping blows the tiny model up in ~20 steps.
    cfg = make_config("full_finetune", training={"max_steps": 60, "learning_rate": 1.0, "optimizer": "sgd",
                                                  "max_grad_norm": 0.0, "lr_scheduler": "constant"},
                      hardware={"mixed_precision": "no"}, monitoring={"save_steps": 4, "save_total_limit": 1})
    run, events, rc = train(store, cfg)
    assert rc == 1
    error = next(e for e in events if isinstance(e, Error))
    finished = events[-1]
    assert error.kind == "diverged" and isinstance(finished, Finished) and finished.status == "failed"
    steps = [e.step for e in events if isinstance(e, Step)]
    bad = finished.summary["diverged_at_step"]
    assert f"diverged at step {bad}:" in error.message and ("NaN" in error.message or "infinite" in error.message)
    assert steps == list(range(1, bad)) and bad < 60  # every good step was logged, the bad one was not
    assert "max_grad_norm" in error.hint and "learning_rate" in error.hint and "mixed_precision" in error.hint
    assert finished.summary["convergence"]["verdict"] == "diverged"
    # the last checkpoint before the bad step is kept (and named), holds finite weights; no weights/ written
    kept = run.latest_checkpoint()
    assert kept is not None and int(kept.name.split("-")[1]) == (bad - 1) // 4 * 4
    assert f"checkpoints/{kept.name}" in error.message and not run.weights_dir.exists()
    from safetensors.torch import load_file

    tensors = load_file(str(next((kept / "weights").glob("*.safetensors"))))
    assert all(bool(t.isfinite().all()) for t in tensors.values())
    lines = _strict_lines(run.events_path)
    assert [line["type"] for line in lines][-2:] == ["error", "finished"]
    json.loads(run.file("summary.json").read_text(), parse_constant=_no_nan)


def test_a_loss_spike_stops_the_run_as_diverged(store, learnable_dataset) -> None:
    # SGD at a constant 1.0 without clipping: the loss jumps several-fold within ~10 steps (NaN comes later).
    cfg = make_config("full_finetune", training={"max_steps": 30, "learning_rate": 1.0, "optimizer": "sgd",
                                                  "max_grad_norm": 0.0, "lr_scheduler": "constant"},
                      hardware={"mixed_precision": "no"}, monitoring={"loss_spike_factor": 2.0})
    run, events, rc = train(store, cfg, learnable_dataset)
    assert rc == 1
    error = next(e for e in events if isinstance(e, Error))
    assert error.kind == "diverged" and "spiked" in error.message and "loss_spike_factor (2)" in error.message
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert len(losses) >= 5 and all(math.isfinite(x) for x in losses)
    assert f"at step {len(losses) + 1}:" in error.message
    _strict_lines(run.events_path)


def test_spike_check_uses_the_recent_window() -> None:
    guard = DivergenceGuard(3.0, [], lambda: "nothing kept")
    for loss in (2.0, 2.1, 1.9, 2.0):
        guard.check_loss(len(guard.recent) + 1, loss * 10)  # too little history: no spike check yet
        guard.record(loss)
    guard.record(2.0)
    guard.check_loss(6, 5.9)
    try:
        guard.check_loss(6, 6.1)
    except Diverged as exc:
        assert exc.step == 6 and "nothing kept" in exc.message
    else:
        raise AssertionError("a loss above 3 x the recent mean must stop the run")
    try:
        guard.check_loss(7, float("nan"))
    except Diverged as exc:
        assert "NaN" in exc.message
    else:
        raise AssertionError("NaN must stop the run")


def test_non_finite_numbers_encode_as_null_and_parse_as_nan() -> None:
    line = Step(step=3, loss=float("nan"), learning_rate=float("inf"), grad_norm=float("-inf")).to_line()
    data = json.loads(line, parse_constant=_no_nan)
    assert data["loss"] is None and data["learning_rate"] is None and data["grad_norm"] is None
    step = parse_event(line)
    assert math.isnan(step.loss) and math.isnan(step.learning_rate) and step.grad_norm is None
    finished = Finished(status="failed", summary={"final_loss": float("nan"), "nested": {"x": [1.0, float("inf")]}})
    data = json.loads(finished.to_line(), parse_constant=_no_nan)
    assert data["summary"] == {"final_loss": None, "nested": {"x": [1.0, None]}}
    assert math.isnan(parse_event(Eval(step=1, eval_loss=float("inf")).to_line()).eval_loss)
