"""Weights & Biases sink: one W&B run per lf-tui run, its id kept in the run folder so a resume continues it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from lf_common.files import write_json

TRACKERS_FILE = "trackers.json"  # in the run folder: {"wandb_run_id": ...}


def wandb_run_id(run_path: Path | None, run_id: str) -> str:
    """The W&B run id of this run: read from the run folder, or made (random, so two runs never share one) and kept
    there; without a run folder, one derived from the run id (the same on every resume)."""
    if run_path is None:
        return "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id)[:64]
    path = run_path / TRACKERS_FILE
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get("wandb_run_id"), str) and known["wandb_run_id"]:
        return str(known["wandb_run_id"])
    made = secrets.token_hex(4)
    write_json(path, {**known, "wandb_run_id": made})
    return made


class WandbSink:
    """wandb.init(resume="allow") under the run's own id; its files (an offline run's too) in the run folder."""

    def __init__(self, project: str, run_id: str, config: dict[str, Any], run_path: Path | None):
        import wandb

        self.id = wandb_run_id(run_path, run_id)
        self.run = wandb.init(project=project, id=self.id, resume="allow", name=run_id,
                              dir=str(run_path) if run_path is not None else None,
                              settings=wandb.Settings(console="off"))  # the engine's own stdout and stderr stay as they are
        self.run.config.update(config, allow_val_change=True)  # a resume may have changed the config (max_steps)

    def scalars(self, figures: dict[str, float], step: int, walltime: float | None = None) -> None:
        self.run.log(dict(figures), step=step)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.run.finish()


def describe(sink: WandbSink) -> str:
    offline = getattr(sink.run.settings, "mode", "") in ("offline", "dryrun")
    folder = Path(sink.run.dir).parent  # the W&B run's folder (run.dir is its files/)
    where = (f"offline in {folder}; `wandb sync {folder.parent}/offline-run-*` uploads it with every other segment "
             "of this run" if offline else (getattr(sink.run, "url", "") or ""))
    return f"logging to W&B project {sink.run.project} as run {sink.id}" + (f" ({where})" if where else "")
