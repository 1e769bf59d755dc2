"""Errors the engine reports to users: a kind, a message and a hint (never a bare traceback)."""

from __future__ import annotations

import errno
from pathlib import Path

# Every kind an EngineError carries, and what it means (the hint of each error says what to do): the first ten end a
# training run (its `error` event and summary); the others end a command (eval, fuse, export, generate, serve).
KINDS = {
    "config": "the run's config is invalid",
    "data": "the dataset cannot be read or prepared",
    "model": "the base model cannot be loaded",
    "unsupported_hardware": "this machine lacks what the config needs",
    "oom": "the device ran out of memory",
    "resume": "the run cannot continue from its checkpoint",
    "diverged": "the loss became NaN/infinite or spiked (a training result; the last good checkpoint is kept)",
    "disk": "the run folder could not be written (no space, read-only, over quota); the last complete checkpoint "
            "is kept",
    "distributed": "a rank of a multi-process run died",
    "internal": "a bug in lf-tui or a library",
    "store": "the run's folder cannot be written, so an evaluation's scores could not be saved",
    "task": "an evaluation task is neither a task file nor a task lm-eval knows, or lm-eval cannot load it",
    "offline": "an lm-eval task needs its data set from the Hugging Face hub, which is not reachable",
    "missing_package": "an optional package the command needs (lm-eval) is not installed",
    "eval": "lm-eval returned no results for a task",
    "fuse": "the run's adapter cannot be fused into its base",
    "export": "the run cannot be exported as asked",
    "run": "the run folder has no trained weights yet, or does not exist",
    "request": "a serve request names a run or base that is not loaded",
}
DISK_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
               errno.EDQUOT: "disk quota exceeded"}
# the same causes as other writers word them (Rust's safetensors: "... (os error 28)")
_DISK_TEXT = {**{cause: cause for cause in DISK_ERRNOS.values()},
              **{f"os error {number}": cause for number, cause in DISK_ERRNOS.items()}}
DISK_HINT = ("free space on that disk, or move the run store to another one with --runs-dir DIR or "
             "LF_TUI_RUNS_DIR; then `lf-tui train --resume RUN` continues from the last complete checkpoint")


class EngineError(Exception):
    """A failure with a user-facing explanation; `kind` is one of KINDS (every kind raised is listed there)."""

    def __init__(self, kind: str, message: str, hint: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint


class DataError(EngineError):
    def __init__(self, message: str, hint: str = ""):
        super().__init__("data", message, hint)


class Diverged(EngineError):
    """Training diverged at `step`; nothing of that step (or later) was saved."""

    def __init__(self, step: int, message: str, hint: str = ""):
        super().__init__("diverged", message, hint)
        self.step = step


class DiskError(EngineError):
    """Writing into the run folder failed for want of space (or it is read-only, or over quota)."""

    def __init__(self, message: str, hint: str = DISK_HINT):
        super().__init__("disk", message, hint)


class Cancelled(Exception):
    """Raised inside the loop when a cancel was requested (handled, not an error)."""


def disk_cause(exc: BaseException | None) -> str | None:
    """"no space left on device" (or read-only, over quota) when `exc` or what caused it is such a write
    failure, else None."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, DiskError):
            return exc.message
        number = getattr(exc, "errno", None)
        if isinstance(exc, OSError) and number in DISK_ERRNOS:
            return DISK_ERRNOS[number]
        text = str(exc).lower()
        for marker, cause in _DISK_TEXT.items():
            if marker in text:
                return cause
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def disk_error(exc: BaseException, writing: str, kept: str = "") -> DiskError | None:
    """A DiskError naming what was being written (and what is kept) when `exc` is a disk-full write failure."""
    if isinstance(exc, DiskError):
        return exc
    cause = disk_cause(exc)
    if cause is None:
        return None
    return DiskError(f"{writing}: {cause}" + (f"; {kept}" if kept else ""))


def kept_note(checkpoints_dir: Path) -> str:
    """Which complete checkpoint in `checkpoints_dir` is kept (the newest; trainer_state.json is written last),
    for a failed write's message."""
    steps = [int(p.name.split("-", 1)[1]) for p in checkpoints_dir.glob("step-*")
             if p.name.split("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()]
    if not steps:
        return "no earlier checkpoint was complete"
    return f"the last complete checkpoint, {checkpoints_dir.name}/step-{max(steps)}, is kept"
