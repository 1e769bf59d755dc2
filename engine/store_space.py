"""Whether the run store can be written: one sentence naming the folder, the cause and what to do (no torch)."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

ENV_RUNS_DIR = "LF_TUI_RUNS_DIR"
MIN_FREE_BYTES = 50 * 2**20  # a store with less free space than this is refused before a run starts


class StoreWriteError(OSError):
    """Writing into the run store failed (read-only, full, no permission); the message is one sentence for the user."""


WHAT_TO_DO = f"give a writable folder with --runs-dir DIR or ${ENV_RUNS_DIR}"
CAUSES = {errno.EROFS: "is on a read-only file system", errno.EACCES: "cannot be written (permission denied)",
          errno.EPERM: "cannot be written (operation not permitted)", errno.ENOTDIR: "is not a folder",
          errno.EEXIST: "is not a folder", errno.ENOSPC: "has no space left", errno.EDQUOT: "is over its disk quota"}


def _cause(exc: OSError) -> str:
    return CAUSES.get(exc.errno or 0, f"cannot be written ({exc.strerror or exc})")


def store_error(folder: Path, exc: OSError, what: str = "the runs folder", fix: str = WHAT_TO_DO) -> StoreWriteError:
    """One sentence for a failed write into `folder`: which folder, the cause, what to do."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free some space, or {fix}"
    error = StoreWriteError(f"{what} {folder} {_cause(exc)}: {fix}")
    error.errno = exc.errno
    return error


def unwritable_reason(folder: Path, *, what: str = "the runs folder", fix: str = WHAT_TO_DO) -> str | None:
    """None when `folder` (made if missing) takes a file and has MIN_FREE_BYTES free; else one sentence: which
    folder (`what` names it), why not, and what to do (`fix`: by default --runs-dir or $LF_TUI_RUNS_DIR)."""
    folder = Path(folder).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise OSError(errno.ENOTDIR, "not a folder")
        probe = folder / f".lf-tui-write-check-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            with open(probe, "wb") as fh:
                fh.write(b"ok")
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):
            blocker = next((p for p in (folder, *folder.parents) if p.exists()), folder)
            if blocker != folder:
                return f"{what} {folder} cannot be made ({blocker} is a file, not a folder): {fix}"
        return str(store_error(folder, exc, what, fix))
    if free < MIN_FREE_BYTES:
        return (f"{what} {folder} has only {free / 2**20:.0f} MiB free (a run needs at least "
                f"{MIN_FREE_BYTES // 2**20} MiB): free some space, or {fix}")
    return None
