"""Cancel, resume, reproducibility, crashes and failures of real engine runs."""

from __future__ import annotations

import os
import signal
import time

from engine.launcher import follow_events, launch
from engine.protocol import Checkpoint, Error, Finished, RunStarted, Step
from tests.conftest import make_config, start_run, train


def _wait_for(predicate, timeout: float = 120.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def _steps_until(proc, n: int) -> list:
    seen = []
    for event in proc.events():
        seen.append(event)
        if isinstance(event, Step) and event.step >= n:
            return seen
    raise AssertionError("run ended early")


def test_cancel_saves_a_loadable_checkpoint_and_resume_continues(store, learnable_dataset) -> None:
    cfg = make_config("lora", training={"max_steps": 400})
    run, proc = start_run(store, cfg, learnable_dataset)
    before = _steps_until(proc, 3)
    proc.cancel()
    rest = list(proc.events())
    everything = before + rest  # the cancel may land right after step 3: no Step after it, only the checkpoint
    assert proc.wait(60) == 130
    finished = rest[-1]
    assert isinstance(finished, Finished) and finished.status == "cancelled"
    checkpoint = next(e for e in rest if isinstance(e, Checkpoint))
    assert run.latest_checkpoint() is not None and run.info().status == "cancelled"
    last_step = max(e.step for e in everything if isinstance(e, Step))
    assert checkpoint.step == last_step

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import model_source

    base = AutoModelForCausalLM.from_pretrained(model_source("builtin:tiny-llama"))
    PeftModel.from_pretrained(base, str(run.latest_checkpoint() / "weights"))

    cfg_short = run.config()
    cfg_short["training"]["max_steps"] = last_step + 3
    from methods.config_file import write_json

    write_json(run.file("config.json"), cfg_short)
    resumed = launch(run, resume=True)
    events = list(resumed.events())
    assert resumed.wait(120) == 0
    started = next(e for e in events if isinstance(e, RunStarted))
    steps = [e.step for e in events if isinstance(e, Step)]
    assert started.resumed_from_step == last_step and steps == [last_step + 1, last_step + 2, last_step + 3]
    assert run.info().status == "completed"


def test_same_config_data_and_seed_give_the_same_loss_curve(store, learnable_dataset) -> None:
    cfg = make_config("lora", training={"max_steps": 6, "seed": 3}, method_specific={"lora_dropout": 0.1})
    curves = []
    for _ in range(2):
        _, events, rc = train(store, cfg, learnable_dataset)
        assert rc == 0
        curves.append([e.loss for e in events if isinstance(e, Step)])
    assert curves[0] == curves[1]


def test_kill_9_is_crashed_and_resumable(store, learnable_dataset) -> None:
    cfg = make_config("lora", training={"max_steps": 400}, monitoring={"save_steps": 2})
    run, proc = start_run(store, cfg, learnable_dataset)
    events = _steps_until(proc, 5)
    assert any(isinstance(e, Checkpoint) for e in events)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.detach()
    _wait_for(lambda: run.info().status == "crashed")
    info = run.info()
    assert info.steps >= 5
    replay = list(follow_events(run, poll_s=0.05))  # a reader gives up on a dead engine instead of hanging
    assert not any(isinstance(e, Finished) for e in replay)
    resumed = launch(run, resume=True)
    first = next(e for e in resumed.events() if isinstance(e, RunStarted))
    assert first.resumed_from_step >= 2
    resumed.cancel()
    list(resumed.events())
    resumed.wait(60)


def _train_on_data_changed_after_launch_checks(store, path, text: str):
    """A run created on a good data file that is then rewritten (create_run checks the data before a run folder
    exists): the engine's own refusal of the bad file, as when it changes between the check and the engine."""
    from lf_tui.run_setup import create_run

    path.write_text('{"instruction": "a", "output": "b"}\n')
    run = create_run(store, make_config("lora"), str(path), None)
    path.write_text(text)
    proc = launch(run)
    events = list(proc.events())
    return run, events, proc.wait(timeout=120)


def test_missing_dataset_field_fails_with_an_error_event(store, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    run, events, rc = _train_on_data_changed_after_launch_checks(
        store, bad, '{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n')
    assert rc == 1
    error = next(e for e in events if isinstance(e, Error))
    assert error.kind == "data" and "line 2" in error.message and "'output'" in error.message
    assert isinstance(events[0], RunStarted)  # the stream still opens with the protocol version
    assert run.info().status == "failed"


def test_dataloader_workers_give_the_same_curve(store, learnable_dataset) -> None:
    curves = []
    for workers in (0, 2):
        cfg = make_config("lora", training={"max_steps": 5, "seed": 1}, hardware={"dataloader_num_workers": workers})
        _, events, rc = train(store, cfg, learnable_dataset)
        assert rc == 0
        curves.append([e.loss for e in events if isinstance(e, Step)])
    assert curves[0] == curves[1] and len(curves[0]) == 5


def test_errors_are_classified() -> None:
    from engine.runner import _classify

    kind, hint = _classify(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert kind == "oom" and "gradient_checkpointing" in hint and "QLoRA" in hint
    assert _classify(ValueError("boom"))[0] == "internal"


def test_a_failed_run_replays_through_to_its_summary(store, tmp_path) -> None:
    run, _, rc = _train_on_data_changed_after_launch_checks(store, tmp_path / "empty.jsonl", "")
    assert rc == 1
    replay = [e.type for e in follow_events(run, follow=False)]
    assert replay[0] == "run_started" and replay[-2:] == ["error", "finished"]
