"""One engine per run folder: an advisory lock the kernel releases when its holder dies (no stale locks)."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

LOCK_FILE = "engine.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, the pid check in the store remains
    fcntl = None  # type: ignore[assignment]


CONTENDED = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
LOCKED_EXIT = 3  # the engine's exit code when another engine holds the run


class RunLocked(RuntimeError):
    """Another live engine holds the run."""


class RunLock:
    """Held by the engine for its whole life; a dead holder's lock is free again at once."""

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RunLocked naming the holder; records our pid in the file."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is not None:
            for attempt in range(20):  # a reader's probe holds a shared lock for microseconds: retry briefly
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in CONTENDED:  # no locking on this filesystem (NFS without lockd...)
                        break  # go on unlocked: the store still tells a live engine by its pid
                    if attempt == 19:
                        os.close(fd)
                        raise RunLocked(f"{self.path.parent}: another engine (pid {holder_pid(self.path.parent)}) "
                                        "is training this run") from None
                    time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def is_locked(run_dir: str | os.PathLike[str]) -> bool:
    """True while a live engine holds the run (probes without taking the lock for long)."""
    path = Path(run_dir) / LOCK_FILE
    if fcntl is None or not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in CONTENDED  # any other error: this filesystem cannot lock, so nobody holds it
    finally:
        os.close(fd)  # also releases our probe's shared lock
    return False


def holder_pid(run_dir: str | os.PathLike[str]) -> int | None:
    try:
        return int(json.loads((Path(run_dir) / LOCK_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
