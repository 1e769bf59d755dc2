"""`lf-tui eval`: multiple-choice accuracy by log-likelihood, checked against a direct computation and trained runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.data import ALPACA_PROMPT, prompt_ids
from engine.errors import DataError
from engine.eval_tasks import SAMPLE_TASK, Question, read_task
from engine.evaluate import score
from engine.models import load_base_model, load_tokenizer, resolve_runtime
from engine.run_store import RunDir, RunStore
from tests.conftest import LEARNABLE, make_config, train

LF_TUI = str(Path(sys.executable).with_name("lf-tui"))
GREETING = "Hello there, friend."
DISTRACTORS = ["Goodbye, see you soon.", "The cat sat on the mat.", "Seven plus two is nine."]
PROMPT = ALPACA_PROMPT.format(instruction="Say the greeting.", input_block="")


def greeting_task(path: Path) -> Path:
    """Eight questions whose answer is the trained greeting, at every position among the choices."""
    lines = []
    for i in range(8):
        choices = list(DISTRACTORS)
        choices.insert(i % 4, GREETING)
        lines.append(json.dumps({"context": PROMPT, "choices": choices, "answer": i % 4}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_common_task_shapes_are_read(tmp_path: Path) -> None:
    task = read_task(write(tmp_path / "mixed.jsonl", [
        {"ctx": "A man opens a door. He", "endings": ["walks in.", "eats it.", "flies.", "melts."], "label": "0"},
        {"question": "2+2?", "choices": ["3", "4"], "answer": 1},
        {"question": "Sky?", "choices": {"text": ["red", "blue", "green"], "label": ["A", "B", "C"]},
         "answerKey": "B"},
        {"goal": "Open a jar", "sol1": "twist the lid", "sol2": "freeze the jar", "label": 0},
        {"question": "Pick C", "A": "a", "B": "b", "C": "c", "D": "d", "answer": "C"},
        {"question": {"stem": "Hot?", "choices": [{"text": "fire", "label": "1"}, {"text": "ice", "label": "2"}]},
         "answerKey": "1"},
        "",
    ]))
    assert task.name == "mixed" and len(task.questions) == 6
    assert [q.answer for q in task.questions] == [0, 1, 1, 0, 2, 0]
    assert task.questions[0].context == "A man opens a door. He"
    assert task.questions[1].context == "Question: 2+2?\nAnswer:" and task.questions[1].choices == ["3", "4"]
    assert task.questions[5].choices == ["fire", "ice"] and task.questions[5].context.startswith("Question: Hot?")
    sample = read_task(SAMPLE_TASK)
    assert len(sample.questions) >= 30 and all(len(q.choices) == 4 for q in sample.questions)


@pytest.mark.parametrize(("line", "message"), [
    ('{"question": "x", "choices": ["a", "b"], "answer": 1', "not JSON"),
    ({"question": "x", "answer": 0}, "no choices"),
    ({"question": "x", "choices": ["a", "b"], "answer": 5}, "field 'answer' = 5 is not the index (0-1)"),
    ({"question": "x", "choices": ["a", "b"], "answer": "Z"}, "is not the index (0-1) or the letter"),
    ({"choices": ["a", "b"], "answer": 0}, "no context or question"),
    ({"question": "x", "choices": ["a"], "answer": 0}, "must list at least two non-empty strings"),
])
def test_a_bad_line_names_the_file_and_line(tmp_path: Path, line: Any, message: str) -> None:
    path = write(tmp_path / "bad.jsonl", [{"question": "ok", "choices": ["a", "b"], "answer": 0}, line])
    with pytest.raises(DataError) as caught:
        read_task(path)
    assert caught.value.message.startswith(f"{path}:2: ") and message in caught.value.message
    assert "choices" in caught.value.hint  # the accepted shape


def direct_loglik(model: Any, tokenizer: Any, context: str, choice: str) -> float:
    """log p(choice | context), one unpadded sequence at a time, straight from the logits."""
    ctx = prompt_ids(tokenizer, context)
    whole = prompt_ids(tokenizer, context + " " + choice)
    assert whole[:len(ctx)] == ctx
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([whole])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(float(logprobs[t - 1, whole[t]]) for t in range(len(ctx), len(whole)))


def test_log_likelihoods_and_accuracy_match_a_direct_computation() -> None:
    cfg = make_config("lora", hardware={"device": "cpu", "mixed_precision": "no"})  # fp32: no autocast
    tokenizer, runtime = load_tokenizer(cfg), resolve_runtime(cfg)
    model = load_base_model(cfg, runtime)
    questions = [Question("q0", "The sky is", ["blue", "a very long answer indeed", "green"], 0),
                 Question("q1", "Two and two make", ["four", "five apples and a pear"], 1),
                 Question("q2", "Water is", ["wet", "dry", "made of cheese on Tuesdays", "hot"], 3)]
    result = score(model, tokenizer, questions, runtime)
    expected = [[direct_loglik(model, tokenizer, q.context, c) for c in q.choices] for q in questions]
    for got, want in zip(result["per_question"], expected):
        assert got["loglik"] == pytest.approx(want, abs=1e-3)  # batched and padded == one at a time
    picks = [max(range(len(ll)), key=ll.__getitem__) for ll in expected]
    norm_picks = [max(range(len(ll)), key=lambda i, ll=ll, q=q: ll[i] / len(q.choices[i]))
                  for ll, q in zip(expected, questions)]
    assert [p["pred"] for p in result["per_question"]] == picks
    assert result["correct"] == sum(p == q.answer for p, q in zip(picks, questions))
    assert result["correct_norm"] == sum(p == q.answer for p, q in zip(norm_picks, questions))
    assert result["acc"] == result["correct"] / 3 and result["count"] == 3


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval")


@pytest.fixture(scope="module")
def runs(root: Path) -> Any:
    """Runs trained on the greeting (once per method, on first use) in `root`/runs, the default ./runs from root."""
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    store = RunStore(root / "runs")

    class Runs(dict):
        def __missing__(self, method: str) -> RunDir:
            lr = {"full_finetune": 1e-3, "adapters": 5e-3}.get(method, 1e-2)
            config = make_config(method, training={"max_steps": 10, "learning_rate": lr}, data={"eval_split": 0},
                                 hardware={"mixed_precision": "no"})
            run, _, code = train(store, config, dataset)
            assert code == 0, (run.path / "engine.log").read_text()[-3000:]
            self[method] = run
            return run

    return Runs()


def lf(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([LF_TUI, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("method", ["lora", "full_finetune", "prefix_tuning", "adapters"])
def test_a_model_trained_on_the_answer_picks_it(method: str, runs: Any, root: Path) -> None:
    run = runs[method]
    greeting_task(root / "greeting.jsonl")
    proc = lf(root, "eval", run.run_id[:-2], "--tasks", "greeting.jsonl", "--base", "--json")
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout)["results"][0]
    trained, base = entry["models"]["trained"], entry["models"]["base"]
    assert trained["count"] == 8 and trained["correct"] == 8 and trained["acc"] == 1.0
    gain = [t["loglik"][t["answer"]] - b["loglik"][b["answer"]]
            for t, b in zip(trained["per_question"], base["per_question"])]
    assert min(gain) > 1.0  # training raised the greeting's log-likelihood over the base's
    saved = json.loads((run.path / "eval" / "greeting.json").read_text())
    assert saved["models"]["trained"]["correct"] == 8 and saved["models"]["base"]["count"] == 8
    assert saved["method"] == method and "length-normalised" in saved["normalisation"]


def test_cli_as_the_readme_shows(runs: Any, root: Path) -> None:
    run = runs["lora"]
    proc = lf(root, "eval", run.run_id, "--tasks", "sample", "--limit", "10")
    assert proc.returncode == 0, proc.stderr
    assert "sample_mc" in proc.stdout and "trained" in proc.stdout and "/10)" in proc.stdout
    assert "report judges only the full one" in " ".join(proc.stdout.split())
    saved = json.loads((run.path / "eval" / "sample_mc@limit10.json").read_text())  # never the full result's file
    assert saved["models"]["trained"]["count"] == 10 and "base" not in saved["models"]
    assert 0 <= saved["models"]["trained"]["correct"] <= 10 and saved["limit"] == 10 and saved["limited"]
    assert not (run.path / "eval" / "sample_mc.json").exists()


def test_clear_errors(runs: Any, root: Path) -> None:
    run = runs["lora"]
    write(root / "broken.jsonl", [{"question": "x", "choices": ["a", "b"], "answer": 0}, "{nope"])
    bad = lf(root, "eval", run.run_id, "--tasks", "broken.jsonl")
    assert bad.returncode == 1 and f"{root / 'broken.jsonl'}:2: not JSON" in bad.stderr
    missing = lf(root, "eval", "no-such-run", "--tasks", "sample")
    assert missing.returncode == 2 and "no-such-run" in missing.stderr
    assert "Traceback" not in bad.stderr + missing.stderr


def test_lm_eval_task_names_without_lm_eval_say_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import lm_eval_tasks
    from engine.errors import EngineError

    monkeypatch.setattr(lm_eval_tasks, "_manager", lambda: None)  # what it answers where lm-eval is not installed
    with pytest.raises(EngineError) as caught:
        lm_eval_tasks.resolve(["hellaswag"])
    assert caught.value.kind == "missing_package"
    assert "'hellaswag' is not a task file, and the lm-eval package" in caught.value.message
    assert "-m pip install lm-eval" in caught.value.hint


def untrained_run(root: Path) -> RunDir:
    """A run folder with a config and no weights: an evaluation that got as far as loading a model would fail with
    "no trained weights yet", so a refusal shows it came before."""
    return RunStore(root / "runs").create("lora", {"method_name": "lora", "base_model": "builtin:tiny-llama"})


def test_an_lm_eval_task_offline_is_refused_before_a_model_loads(tmp_path: Path) -> None:
    run = untrained_run(tmp_path)
    env = {**{k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([LF_TUI, "eval", run.run_id, "--tasks", "hellaswag"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert "lm-eval task 'hellaswag' needs its data set from the Hugging Face hub, and this machine is offline" in err
    assert "give a local JSONL file of questions" in err and "no trained weights" not in err
    assert "Traceback" not in proc.stderr and not (run.path / "eval").exists()


def test_an_unknown_task_name_says_so_with_the_nearest_names() -> None:
    from engine.errors import EngineError
    from engine.lm_eval_tasks import resolve

    with pytest.raises(EngineError) as caught:
        resolve(["hellaswagg"])
    assert caught.value.kind == "task"
    assert caught.value.message == ("unknown task 'hellaswagg': it is not a task file, nor a task or group that "
                                    "lm-eval knows")
    assert caught.value.hint.startswith("did you mean 'hellaswag'") and "lm-eval ls tasks" in caught.value.hint


def test_a_read_only_run_folder_is_refused_before_scoring(tmp_path: Path) -> None:
    run = untrained_run(tmp_path)
    script = (f"mount --bind {run.path} {run.path} && mount -o remount,ro,bind {run.path} && "
              f"exec {LF_TUI} eval {run.run_id} --tasks sample")
    try:
        proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, env={k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"})
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if "unshare:" in proc.stderr or "mount:" in proc.stderr:
        pytest.skip(f"no private mounts here: {proc.stderr.strip()[:200]}")
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert (f"nothing was scored: the scores are saved in the run's folder, and run {run.run_id}'s folder {run.path} "
            "is on a read-only file system: make it writable, or copy the run folder to a writable runs folder and use "
            "it there") in err
    assert "no trained weights" not in err and "Traceback" not in err
