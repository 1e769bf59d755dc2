"""Runs that ended badly (failed, crashed, cancelled), made from the committed fixture run without training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.protocol import Error, Finished
from engine.run_store import RunDir

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot_runs" / "20260101-120000-lora-aaaa"
DATA_ERROR = {"kind": "data", "message": "runs/data.jsonl line 7: not a JSON object (a JSON array saved as .jsonl?)",
              "hint": "rename the file to data.json: a .json file may hold an array of records"}


def ended_run(root: Path, status: str, steps: int = 12, error: dict | None = None, checkpoint: bool = True,
              name: str = "") -> RunDir:
    """A copy of the fixture run cut after `steps` steps that ended `status` (failed with `error`, cancelled, or
    crashed: no final event and a dead engine); `checkpoint`: a complete one at the last step, to resume from."""
    run_id = name or f"20260101-1{steps:02d}000-lora-{status[:4]}"
    folder = root / run_id
    folder.mkdir(parents=True)
    for file in ("config.json", "meta.json"):
        shutil.copy(FIXTURE / file, folder / file)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "run_id": run_id}))
    kept = []
    for line in (FIXTURE / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "step" and event["step"] > steps or event["type"] == "finished":
            break
        kept.append(line)
    last_ts = json.loads(kept[-1])["ts"]
    summary = {"status": status, "total_steps": steps, "final_loss": 4.5, "training_time_s": 5.0,
               "peak_memory_mb": 700.0}
    if status == "failed":
        kept.append(Error(ts=last_ts + 0.1, **(error or DATA_ERROR)).to_line().strip())
        summary["error"] = (error or DATA_ERROR)["message"]
    if status != "crashed":
        kept.append(Finished(ts=last_ts + 0.2, status=status, summary=summary).to_line().strip())
        (folder / "summary.json").write_text(json.dumps(summary))
    else:  # the engine that wrote the events is gone (no such process)
        (folder / "engine.json").write_text(json.dumps({"pid": 2 ** 22 + 7, "create_time": 1.0, "started": 1.0}))
    (folder / "events.jsonl").write_text("\n".join(kept) + "\n")
    if checkpoint:
        step_dir = folder / "checkpoints" / f"step-{steps}"
        step_dir.mkdir(parents=True)
        (step_dir / "trainer_state.json").write_text(json.dumps({"step": steps}))
    return RunDir(folder)
