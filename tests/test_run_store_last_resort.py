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
