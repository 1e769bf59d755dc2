"""monitoring.eval_tasks: multiple-choice tasks scored at each evaluation during training, carried by the eval
events (the run view's and the CLI's eval line), and the final weights' scores saved as `lf-tui eval` saves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.protocol import Eval, parse_event
from engine.run_store import RunStore
from lf_tui.present.run_text import eval_line
from tests.conftest import make_config, train


def test_tasks_are_scored_at_each_evaluation_and_saved(tmp_path: Path, learnable_dataset: Path) -> None:
    from engine.eval_tasks import SAMPLE_TASK, read_task
    from engine.evaluate import score
    from engine.generate import load_trained_model
    from engine.run_store import RunDir

    questions = tmp_path / "greet.jsonl"
    questions.write_text(json.dumps({"question": "Say the greeting.", "choices": ["Goodbye.", "Hello there, friend."],
                                     "answer": 1}) + "\n")
    cfg = make_config("lora", training={"max_steps": 6, "learning_rate": 3e-2},
                      monitoring={"eval_steps": 3, "eval_tasks": ["sample", str(questions)]},
                      data={"eval_split": 0.2}, hardware={"mixed_precision": "no"})
    run, _, code = train(RunStore(tmp_path / "runs"), cfg, learnable_dataset)
    assert code == 0
    evals = [e for e in (parse_event(x) for x in run.events_path.read_text().splitlines()) if isinstance(e, Eval)]
    assert [e.step for e in evals] == [3, 6]
    for e in evals:
        assert set(e.tasks) == {"sample_mc", "greet"} and e.tasks["sample_mc"]["count"] == 32
        assert "sample_mc acc" in eval_line(e) and "greet acc" in eval_line(e)
    saved = json.loads((run.path / "eval" / "sample_mc.json").read_text())
    trained = saved["models"]["trained"]
    assert saved["during_training_step"] == 6 and trained["acc"] == evals[-1].tasks["sample_mc"]["acc"]
    # the same score `lf-tui eval` computes on the saved weights
    model, tokenizer, _impl, runtime = load_trained_model(RunDir(run.path))
    again = score(model, tokenizer, read_task(SAMPLE_TASK).questions, runtime)
    assert again["correct"] == trained["correct"] and again["correct_norm"] == trained["correct_norm"]


def test_a_bad_task_file_fails_the_run_before_training_naming_the_line(tmp_path: Path,
                                                                       learnable_dataset: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "choices": ["a", "b"], "answer": 0}\n{"question": "q"}\n')
    cfg = make_config("lora", training={"max_steps": 2}, monitoring={"eval_steps": 1, "eval_tasks": [str(bad)]})
    run, _, code = train(RunStore(tmp_path / "runs"), cfg, learnable_dataset)
    assert code == 1
    text = run.events_path.read_text()
    assert f"{bad}:2" in text and '"type":"step"' not in text.replace(" ", "")


@pytest.mark.parametrize("value", ["hellaswag"])
def test_an_lm_eval_name_is_refused_during_training(value: str, tmp_path: Path, learnable_dataset: Path) -> None:
    cfg = make_config("lora", training={"max_steps": 2}, monitoring={"eval_steps": 1, "eval_tasks": [value]})
    run, _, code = train(RunStore(tmp_path / "runs"), cfg, learnable_dataset)
    assert code == 1 and "lf-tui eval" in run.events_path.read_text()
