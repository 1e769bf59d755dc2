"""Which checkpoints stay (the newest N plus the best-eval one) and copying a checkpoint's weights out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.checkpoint import STATE_FILE, WEIGHTS, swap_in


def complete_checkpoints(checkpoints_dir: Path) -> dict[int, Path]:
    """Step -> folder of every complete checkpoint (trainer_state.json is written last)."""
    if not checkpoints_dir.is_dir():
        return {}
    found = {}
    for folder in checkpoints_dir.glob("step-*"):
        step = folder.name.split("-", 1)[1]
        if step.isdigit() and (folder / STATE_FILE).is_file():
            found[int(step)] = folder
    return found


def rotate(checkpoints_dir: Path, limit: int, protect: set[int]) -> list[int]:
    """Delete all but the newest `limit` complete checkpoints and the `protect`ed steps; 0 keeps all."""
    if limit <= 0:
        return []
    found = complete_checkpoints(checkpoints_dir)
    keep = set(sorted(found)[-limit:]) | protect
    removed = []
    for step in sorted(found):
        if step not in keep:
            shutil.rmtree(found[step], ignore_errors=True)
            removed.append(step)
    return removed


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link where the filesystem allows (checkpoint files are never rewritten in place), else a copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def copy_weights(checkpoint: Path, target: Path) -> None:
    """Replace `target` with the checkpoint's saved weights (linked or copied aside first, then renamed)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(checkpoint / WEIGHTS, tmp, copy_function=_link_or_copy)
        swap_in(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-copied weights stay (the runner names the disk's failure)
        raise
