"""Atomic file writes: readers never see half a file, and the file gets the mode an ordinary open() gives it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "current_umask", "follow_umask", "write_json"]


def current_umask() -> int:
    """This process's umask, read without changing it (os.umask() would, for a moment, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike[str]) -> None:
    """Give `path` (a file, or a folder and all in it) the modes open() and mkdir() give (0o666 / 0o777 less the
    umask), for what libraries create private: safetensors files (0600), tempfile.mkdtemp folders (0700)."""
    mask = current_umask()
    root = Path(path)
    entries = [root, *root.rglob("*")] if root.is_dir() else [root]
    for entry in entries:
        if entry.is_symlink():
            continue
        mode = entry.stat().st_mode
        full = 0o777 if entry.is_dir() or mode & 0o111 else 0o666
        if mode & 0o7777 != full & ~mask:
            os.chmod(entry, full & ~mask)


def _temp_beside(p: Path) -> tuple[int, Path]:
    """A new file next to `p`, created as open() creates one (0o666 less the umask, default ACLs applied): unlike
    mkstemp's private 0600, which would leave configs and run files unreadable to a team sharing a machine."""
    while True:
        tmp = p.parent / f".{p.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temporary file in the same folder and rename, so readers never see half a file.

    A new file gets 0o666 less the umask; a file written over keeps its mode, as with open(path, "w")."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(p)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            try:
                os.chmod(fh.fileno(), os.stat(p).st_mode & 0o7777)
            except FileNotFoundError:
                pass
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Atomically write pretty JSON."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
