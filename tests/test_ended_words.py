"""A run that ended says why and what next: the words (present/ending.py), the runs table's reason, the error read
back from a run folder, and RUN arguments (RunStore.resolve), without a terminal or an engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.protocol import Error, RunStarted
from engine.run_store import RunNotFound, RunStore
from lf_tui.present import ending, runs_table
from lf_tui.run_ending import info_next_steps, last_error, run_failure
from tests.ended_fixtures import DATA_ERROR, ended_run


def test_a_failure_says_its_kind_message_fix_and_how_to_resume() -> None:
    failure = ending.failure_of(Error(kind="data", message="d.jsonl line 7: bad", hint="rename it to d.json"))
    assert failure is not None
    assert ending.ended_lines("R", "failed", failure, None, in_app=True) == [
        "data error: d.jsonl line 7: bad", "hint: rename it to d.json",
        "after the fix, r resumes it from its last checkpoint"]
    assert ending.ended_lines("R", "failed", failure, None)[-1] == \
        "after the fix, resume it from its last checkpoint: lf-tui train --resume R"
    no_hint = ending.failure_of(Error(kind="oom", message="CUDA out of memory"))
    assert no_hint is not None and "batch_size" in no_hint.fix  # the hint that goes with the kind
    from_summary = ending.failure_of(None, {"status": "failed", "error": "loss became NaN", "diverged_at_step": 9})
    assert from_summary == ending.Failure("diverged", "loss became NaN")
    assert ending.failure_of(None, {"status": "completed"}) is None
    assert ending.failure_of(None, {"error": "No space left", "error_kind": "disk", "error_hint": "free space"}) == \
        ending.Failure("disk", "No space left", "free space")


def test_crashed_and_cancelled_runs_say_what_next_and_completed_ones_nothing() -> None:
    crashed = ending.ended_lines("R", "crashed", None, None)
    assert crashed == [ending.CRASHED, "resume it from its last checkpoint: lf-tui train --resume R"]
    refusal = "run R has no complete checkpoint to resume from; start a new run with its config"
    assert ending.ended_lines("R", "cancelled", None, refusal, in_app=True) == [refusal]
    assert ending.ended_lines("R", "completed", None, None) == []
    assert ending.ended_refusal("crashed", "checkpoint") == \
        "the run has crashed (its engine is gone): nothing can save a checkpoint now"
    assert ending.ended_refusal("failed", "cancel") == "the run has failed: there is nothing to cancel"
    assert ending.left_while_cancelling("R", "running").startswith("stopped watching; the run is still cancelling")
    assert ending.left_while_cancelling("R", "cancelled") == "stopped watching; the run has ended: cancelled"


def test_the_runs_table_gives_the_reason_where_it_fits(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    ended_run(tmp_path, "failed")
    ended_run(tmp_path, "crashed", steps=20)
    ended_run(tmp_path, "cancelled", steps=30)
    by_status = {info.status: runs_table.cells(info)["reason"] for info in store.list()}
    assert by_status["crashed"] == "engine stopped without a final event"
    assert by_status["cancelled"] == "cancel requested"
    assert by_status["failed"].startswith("data: runs/data.jsonl line 7: not a JSON") and \
        by_status["failed"].endswith("…") and len(by_status["failed"]) == ending.REASON_WIDTH
    shown = {width: _runs_cli(tmp_path, width) for width in (80, 110, 200)}
    assert "reason" not in shown[80] and "engine stopped" not in shown[80]  # no room: the run view says it
    assert "│ reason" not in shown[110] and " reason" in shown[110] and "data: runs/data.jsonl" in shown[110]
    assert "┃ reason" in shown[200] and "cancel requested" in shown[200]
    assert all(len(line) <= width for width, text in shown.items() for line in text.splitlines())
    failed = next(i for i in store.list() if i.status == "failed")
    assert info_next_steps(failed) == [f"hint: {DATA_ERROR['hint']}", "after the fix, resume it from its last "
                                       f"checkpoint: lf-tui train --resume {failed.run_id}"]


def _runs_cli(root: Path, width: int) -> str:
    """`lf-tui runs` in a terminal `width` columns wide."""
    import argparse
    import io

    from rich.console import Console

    from lf_tui.cli import console, runs

    buffer = io.StringIO()
    original = console.out
    console.out = lambda: Console(file=buffer, width=width, highlight=False, soft_wrap=True)  # type: ignore[assignment]
    try:
        assert runs.run(argparse.Namespace(runs_dir=str(root), json=False)) == 0
    finally:
        console.out = original  # type: ignore[assignment]
    return buffer.getvalue()


def test_only_the_last_segments_error_is_the_runs_failure(tmp_path: Path) -> None:
    run = ended_run(tmp_path, "failed", checkpoint=False)
    assert last_error(run) == Error(**DATA_ERROR, ts=last_error(run).ts)  # type: ignore[union-attr]
    failure = run_failure(run)
    assert failure == ending.Failure(**DATA_ERROR)
    with open(run.events_path, "a") as fh:  # a resume opened a new segment: the old error is history
        fh.write(RunStarted(run_id=run.run_id, method="lora", base_model="b", resumed_from_step=12).to_line())
    assert last_error(run) is None and run_failure(run, summary={}) is None


def test_run_arguments_refuse_folders_that_are_not_runs_and_take_the_apps_short_names(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    failed = ended_run(root, "failed", name="20260101-184554-lora-c371")
    ended_run(root, "crashed", name="20260101-184554-dora-d482")
    store = RunStore(root)
    for name in ("20260101-184554-lora-c371", "20260101-184554-l", "lora-c371", "c371", "184554-c371",
                 "lora 184554-c371", str(failed.path)):
        assert store.resolve(name).path == failed.path, name
    with pytest.raises(RunNotFound, match="matches 2 runs"):
        store.resolve("20260101-184554")
    not_a_run = tmp_path / "etc"
    not_a_run.mkdir()
    (not_a_run / "config.json").write_text(json.dumps({"model_type": "llama"}))  # a model folder, say
    with pytest.raises(RunNotFound, match=f"^{not_a_run} is a folder but not a run folder"):
        store.resolve(str(not_a_run))
    (root / "notes").mkdir()
    with pytest.raises(RunNotFound, match="not a run folder"):
        store.resolve("notes")
    with pytest.raises(RunNotFound, match="is a file, not a run folder"):
        store.resolve(str(failed.events_path))
    with pytest.raises(RunNotFound, match=f"the runs folder {tmp_path / 'nowhere'} does not exist"):
        RunStore(tmp_path / "nowhere").resolve("184554-c371")
