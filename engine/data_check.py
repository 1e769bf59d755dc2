"""A dataset checked before launch with the engine's own readers (no torch): format, the first records, the bad line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.data_files import HEAD_RECORDS, SAMPLE_DATASET, read_records
from engine.data_formats import to_samples
from engine.errors import DataError

__all__ = ["HEAD_RECORDS", "check_data", "data_refusal", "is_local_data"]


def is_local_data(source: str) -> bool:
    """True for a dataset on this machine (a file or folder that exists); hub names are the engine's to load."""
    try:
        return Path(source).expanduser().exists()
    except (OSError, ValueError):
        return False


def check_data(source: str | Path, data_cfg: Any, limit: int = HEAD_RECORDS) -> str:
    """The format of the first `limit` records of each local file (DataError naming the file, line and fix)."""
    fmt, _ = to_samples(read_records(Path(source).expanduser(), head=limit), data_cfg.format, data_cfg.text_field)
    return fmt


def data_refusal(train: str | None, eval_data: str | None, data_cfg: Any) -> str | None:
    """Why training on `train` (None: the bundled sample) and `eval_data` would fail when its data loads, in one
    sentence with the fix, or None; hub datasets are not checked (the engine loads them)."""
    for source in (train or str(SAMPLE_DATASET), eval_data):
        if not source or not is_local_data(source):
            continue
        try:
            check_data(source, data_cfg)
        except DataError as exc:
            return exc.message + (f"; {exc.hint}" if exc.hint else "")
    return None
