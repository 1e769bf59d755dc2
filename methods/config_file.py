"""Reads config files with clear errors for unusable input, and writes migrated ones back (atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lf_common.files import atomic_write_text, write_json

__all__ = [
    "MAX_CONFIG_BYTES", "ConfigInputError", "atomic_write_text", "parse_config_text", "read_config_file",
    "read_config_text", "write_json", "write_upgraded",
]  # atomic_write_text, write_json: re-exported from lf_common.files for older imports

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


def write_upgraded(path: str | Path, document: dict[str, Any], old_version: str) -> Path:
    """Write a migrated config over the original, keeping the original beside it; return the backup path."""
    p = Path(path)
    backup = p.with_name(f"{p.name}.v{old_version}.bak")
    backup.write_bytes(p.read_bytes())
    write_json(p, document)
    return backup
