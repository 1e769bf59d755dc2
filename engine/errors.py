"""Errors the engine reports to users: a kind, a message and a hint (never a bare traceback)."""

from __future__ import annotations

import errno

# Every kind an `error` event may carry, and what it means (the hint of each error says what to do).
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
}
DISK_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
               errno.EDQUOT: "disk quota exceeded"}
# the same causes as other writers word them (Rust's safetensors: "... (os error 28)")
_DISK_TEXT = {**{cause: cause for cause in DISK_ERRNOS.values()},
              **{f"os error {number}": cause for number, cause in DISK_ERRNOS.items()}}
DISK_HINT = ("free space on that disk, or move the run store to another one with --runs-dir DIR or "
             "LF_TUI_RUNS_DIR; then `lf-tui train --resume RUN` continues from the last complete checkpoint")


class EngineError(Exception):
    """A failure with a user-facing explanation; `kind` is one of KINDS."""

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
