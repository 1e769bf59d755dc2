"""Run-store operations both front ends share: exit codes, cancel, delete (refused while the engine is live)."""

from __future__ import annotations

import os

import psutil
import pytest

from engine.protocol import Checkpoint, Finished, Step
from engine.run_store import ENGINE, EVENTS, SUMMARY, RunDir, RunRefused, RunStore, exit_code
from lf_common.files import write_json
from tests.conftest import make_config, start_run


def _ended(store: RunStore, status: str) -> RunDir:
    """A run folder that ended `status` (as the engine leaves it), without training."""
    run = store.create("lora", {"method_name": "lora", "base_model": "builtin:tiny-llama"})
    run.events_path.write_text("")
    write_json(run.file(SUMMARY), {"status": status, "total_steps": 3})
    assert run.info().status == status
    return run


def _live(store: RunStore) -> RunDir:
    """A run whose recorded engine is a live process (this test's own: never signal it)."""
    run = store.create("lora", {"method_name": "lora"})
    run.file(EVENTS).write_text("")
    write_json(run.file(ENGINE), {"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                  "started": 1.0})
    assert run.info().status == "running"
    return run


def test_exit_codes() -> None:
    assert exit_code("completed") == 0
    assert exit_code("cancelled") == 130
    for status in ("failed", "crashed", "corrupt", "unknown", ""):
        assert exit_code(status) == 1


@pytest.mark.parametrize("status", ["completed", "cancelled", "failed"])
def test_cancel_of_an_ended_run_says_why_and_signals_nothing(store: RunStore, status: str) -> None:
    run = _ended(store, status)
    reason = run.cancel()
    assert reason == f"run {run.run_id} is {status}, not running: nothing to cancel"
    assert run.info().status == status


def test_cancel_of_a_crashed_run_says_why(store: RunStore) -> None:
    run = store.create("lora", {"method_name": "lora"})
    run.events_path.write_text("")
    write_json(run.file(ENGINE), {"pid": 2**22 + 12345, "create_time": 1.0, "started": 1.0})  # long gone
    assert run.info().status == "crashed"
    assert "not running: nothing to cancel" in (run.cancel() or "")


def test_delete_removes_an_ended_run(store: RunStore) -> None:
    run = _ended(store, "completed")
    (run.checkpoints_dir / "step-2").mkdir(parents=True)
    assert run.delete_refusal() is None
    run.delete()
    assert not run.path.exists()
    assert [r.run_id for r in store.list()] == []
    run.delete()  # already gone: nothing to do, no error


def test_delete_refused_while_the_engine_lives(store: RunStore) -> None:
    run = _live(store)
    refusal = run.delete_refusal()
    assert refusal is not None and "cancel the run before deleting it" in refusal
    with pytest.raises(RunRefused, match="cancel the run before deleting it"):
        run.delete()
    assert run.path.is_dir() and run.file(ENGINE).is_file()


def test_cancel_of_a_running_engine_ends_it_cancelled_with_a_checkpoint(store: RunStore, learnable_dataset) -> None:
    cfg = make_config("lora", training={"max_steps": 400})
    run, proc = start_run(store, cfg, learnable_dataset)
    events = proc.events()
    for event in events:
        if isinstance(event, Step):
            break
    else:
        raise AssertionError("the run ended before its first step")
    seen = RunDir(run.path)  # as another process (the CLI) sees it
    assert seen.info().status == "running"
    assert "cancel the run before deleting it" in (seen.delete_refusal() or "")
    with pytest.raises(RunRefused):
        seen.delete()
    assert seen.cancel() is None
    rest = list(events)
    assert proc.wait(60) == exit_code("cancelled") == 130
    assert isinstance(rest[-1], Finished) and rest[-1].status == "cancelled"
    assert any(isinstance(e, Checkpoint) for e in rest)
    assert seen.info().status == "cancelled" and seen.latest_checkpoint() is not None
    assert seen.cancel() == f"run {seen.run_id} is cancelled, not running: nothing to cancel"
    seen.delete()
    assert not run.path.exists()
