"""A disk so full that events.jsonl and summary.json could not take a run's ending: the store reads the ending the
engine wrote into its own engine.json (failed, with the disk error), not `crashed`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.protocol import RunStarted
from engine.run_store import ENGINE, RunStore
from lf_tui.present.runs_table import ended_reason

HINT = "free some space, or move the run store with --runs-dir DIR or $LF_TUI_RUNS_DIR, then lf-tui train --resume RUN"


def test_an_ending_kept_only_in_engine_json_is_the_runs_status_and_reason(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run = store.create("lora", {"base_model": "builtin:tiny-llama"})
    run.events_path.write_text(RunStarted(ts=time.time(), run_id=run.run_id, method="lora").to_line())
    engine = {"pid": 2**22 + 12345, "create_time": 1.0, "started": time.time()}  # a pid no process has: it ended
    run.file(ENGINE).write_text(json.dumps(engine))
    assert run.info().status == "crashed"  # no record of the ending at all: a crash
    message = "writing the run's events failed: no space left on device"
    run.file(ENGINE).write_text(json.dumps({**engine, "ended": {"status": "failed", "error": message,
                                                                "error_kind": "disk", "error_hint": HINT}}))
    info = run.info()
    assert info.status == "failed"
    assert any("engine.json" in p for p in info.problems)
    reason = ended_reason(info)
    assert reason is not None and reason.startswith("disk: writing the run's events failed: no space"), reason


def test_the_viewer_s_last_lines_follow_the_ending_it_saw_while_the_engine_still_holds_the_run(tmp_path: Path) -> None:
    """The piped ending arrives while the engine still lives (its summary not written, or not yet): the closing
    lines say how to resume the failed run, never "still running"."""
    import io
    import os

    import psutil
    from rich.console import Console

    from engine.protocol import Error, Finished
    from lf_tui.cli.live_view import _final
    from lf_tui.run_state import RunState
    from tests.ended_fixtures import ended_run

    run = ended_run(tmp_path / "runs", "failed")
    run.file("summary.json").unlink()
    run.file(ENGINE).write_text(json.dumps({"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                            "started": time.time()}))
    assert run.info().status == "running"  # what the store sees until the engine exits
    state = RunState()
    for event in (Error(kind="disk", message="no space left on device", hint=HINT),
                  Finished(status="failed", summary={"status": "failed"})):
        state.ingest(event)
    out = io.StringIO()
    assert _final(Console(file=out, width=200), state, run) == 1
    text = out.getvalue()
    assert "still running" not in text and f"lf-tui train --resume {run.run_id}" in text, text


def test_train_waits_for_the_engine_to_exit_before_its_closing_lines(tmp_path: Path, capsys) -> None:
    """The events ended, the engine still holds the run for a moment: `settle` (train: wait for the engine's exit)
    runs before the closing lines, so the resume they advise is not refused as "still running"."""
    from engine.protocol import Error, Finished
    from lf_tui.cli.live_view import watch
    from tests.ended_fixtures import ended_run

    run = ended_run(tmp_path / "runs", "failed")
    seen: list[str] = []
    events = [Error(kind="disk", message="no space left on device", hint=HINT),
              Finished(status="failed", summary={"status": "failed"})]
    code = watch(iter(events), plain=True, on_interrupt=None, run=run,
                 settle=lambda: seen.append(capsys.readouterr().out))
    assert code == 1 and len(seen) == 1
    assert "--resume" not in seen[0]  # nothing of the closing lines before the engine settled
    assert f"lf-tui train --resume {run.run_id}" in " ".join(capsys.readouterr().out.split())
