"""Reads dataset records from files, folders or the hub, naming file and line for every problem."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from engine.errors import DataError

ASSETS = Path(__file__).resolve().parent / "assets"
SAMPLE_DATASET = ASSETS / "sample_alpaca.jsonl"
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


class Record(dict):
    """A dataset row that remembers where it came from."""

    where: str = ""


def _record(data: dict[str, Any], where: str) -> Record:
    rec = Record(data)
    rec.where = where
    return rec


def _text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise DataError(f"{path}: is a binary file, not text", "give a .jsonl, .json, .csv or .parquet dataset")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not UTF-8 text", "save the file as UTF-8") from None


def read_jsonl(path: Path) -> list[Record]:
    records = []
    for number, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number}: not JSON ({exc.msg} at column {exc.colno})",
                            "each line must be one JSON object") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, got {type(data).__name__}")
        records.append(_record(data, f"{path}: line {number}"))
    return records


def read_json(path: Path) -> list[Record]:
    text = _text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Extra data"):
            return read_jsonl(path)  # JSON lines saved as .json
        raise DataError(f"{path}: line {exc.lineno} column {exc.colno}: not JSON ({exc.msg})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a list of records (or an object holding one list)")
        data = lists[0]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of records, got {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise DataError(f"{path}: record {i}: expected an object, got {type(item).__name__}")
        out.append(_record(item, f"{path}: record {i}"))
    return out


def read_csv(path: Path) -> list[Record]:
    reader = csv.DictReader(_text(path).splitlines())
    return [_record(dict(row), f"{path}: line {i + 2}") for i, row in enumerate(reader)]


def read_parquet(path: Path) -> list[Record]:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(str(path))
    except Exception as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    return [_record(row, f"{path}: row {i}") for i, row in enumerate(table.to_pylist())]


READERS = {".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".parquet": read_parquet}


def read_records(source: str | Path) -> list[Record]:
    """Records of a file, of every data file in a folder, or of a hub dataset's train split."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
        if not files:
            raise DataError(f"{path}: folder holds no {', '.join(SUFFIXES)} files")
        return [r for f in files for r in read_records(f)]
    if path.exists():
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise DataError(f"{path}: unsupported file type {path.suffix!r}", f"use one of {', '.join(SUFFIXES)}")
        records = reader(path)
        if not records:
            raise DataError(f"{path}: is empty", "the dataset needs at least one record")
        return records
    if str(source).endswith(SUFFIXES) or "/" not in str(source) or str(source).startswith((".", "/")):
        raise DataError(f"{source}: no such file", "give a dataset file, a folder, or a hub id like org/name")
    return _read_hub(str(source))


def _read_hub(name: str) -> list[Record]:
    try:
        from datasets import load_dataset

        ds = load_dataset(name, split="train")
    except Exception as exc:
        raise DataError(f"{name}: cannot load hub dataset ({str(exc).splitlines()[0][:200]})",
                        "check the id and the network, or download it and give the local file") from None
    return [_record(row, f"{name}: row {i}") for i, row in enumerate(ds)]
