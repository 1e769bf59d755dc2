"""Reads config files with clear errors for unusable input, and writes them atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

MAX_CONFIG_BYTES = 4 * 1024 * 1024


class ConfigInputError(Exception):
    """The file cannot be read as a JSON config at all (exit code 2)."""


def read_config_text(path: str | Path) -> str:
    """Read a config file as UTF-8 text, naming the problem and the fix when it cannot be."""
    p = Path(path)
    if not p.exists():
        raise ConfigInputError(f"{p}: no such file")
    if p.is_dir():
        raise ConfigInputError(f"{p}: is a folder; give a .json config file")
    size = p.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigInputError(f"{p}: {size} bytes is too large for a config (limit {MAX_CONFIG_BYTES})")
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigInputError(f"{p}: line {line}: byte {exc.start} is not UTF-8; save the file as UTF-8") from None


def parse_config_text(text: str, source: str = "<config>") -> Any:
    """Parse JSON, naming line and column of a syntax error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigInputError(f"{source}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigInputError(f"{source}: nested too deeply to be a config") from None


def read_config_file(path: str | Path) -> tuple[str, Any]:
    """Return (text, parsed document) of a config file."""
    text = read_config_text(path)
    return text, parse_config_text(text, str(path))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write pretty JSON."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_upgraded(path: str | Path, document: dict[str, Any], old_version: str) -> Path:
    """Write a migrated config over the original, keeping the original beside it; return the backup path."""
    p = Path(path)
    backup = p.with_name(f"{p.name}.v{old_version}.bak")
    backup.write_bytes(p.read_bytes())
    write_json(p, document)
    return backup
