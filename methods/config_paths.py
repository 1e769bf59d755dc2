"""Where a config's relative paths point: against the config file's folder (or the working directory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def looks_local(value: str, base_dir: Path) -> bool:
    """True for a value written as a path (./x, ../x, /x, ~/x, a data file name) or naming an existing entry."""
    if "://" in value:
        return False  # a URI (s3://, hf://, gs://...) belongs to whatever reads it
    if value.startswith(("./", "../", "/", "~", ".\\", "..\\")) or value in (".", ".."):
        return True
    if value.endswith(DATA_SUFFIXES):
        return True
    try:
        return (base_dir / value).exists()
    except (OSError, ValueError):  # too long, or not a path at all
        return False


def resolve_path(value: str | None, base_dir: Path, *, always: bool = False) -> str | None:
    """`value` made absolute against `base_dir` when it is a local path; hub ids and builtin: names stay."""
    if not value or value.startswith("builtin:") or "://" in value:
        return value
    if not (always or looks_local(value, base_dir)):
        return value  # a hub id such as org/name
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else (base_dir / path).absolute())


def resolve_config_paths(config: Any, base_dir: str | os.PathLike[str]) -> Any:
    """A copy of a validated config whose base_model folder, data paths and log dirs are absolute.

    Relative paths in a config file resolve against the file's folder; for a config with no file (the
    editor's unsaved buffer, quick-train) `base_dir` is the working directory.
    """
    base = Path(base_dir).absolute()
    data = config.data.model_copy(update={"eval_path": resolve_path(config.data.eval_path, base)})
    monitoring = config.monitoring.model_copy(
        update={"tensorboard_log_dir": resolve_path(config.monitoring.tensorboard_log_dir, base, always=True),
                "eval_tasks": [t if t == "sample" else resolve_path(t, base) or t
                               for t in config.monitoring.eval_tasks]})
    return config.model_copy(update={"base_model": resolve_path(config.base_model, base), "data": data,
                                     "monitoring": monitoring})


def resolve_cli_path(value: str | None) -> str | None:
    """A path given on the command line, against the working directory (hub ids stay)."""
    return resolve_path(value, Path.cwd())
