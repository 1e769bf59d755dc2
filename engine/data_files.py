"""Reads dataset records from files, folders or the hub, naming file and line for every problem."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from itertools import islice
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


def _binary(path: Path, start: bytes) -> None:
    if b"\x00" in start[:4096]:
        raise DataError(f"{path}: is a binary file, not text", "give a .jsonl, .json, .csv or .parquet dataset")


def _text(path: Path) -> str:
    raw = path.read_bytes()
    _binary(path, raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not UTF-8 text", "save the file as UTF-8") from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(number, text) of each line, read as it goes (a check of the head never reads a huge file whole)."""
    with open(path, "rb") as fh:
        _binary(path, fh.peek(4096)[:4096])
        for number, raw in enumerate(fh, 1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: line {number}: not UTF-8 text", "save the file as UTF-8") from None


def _not_lines(path: Path, number: int, line: str) -> DataError | None:
    """The error for a whole JSON document saved as JSON lines (its first line opens an array, or an object alone)."""
    head = line.strip()
    if head.startswith("["):
        return DataError(f"{path}: line {number}: holds a JSON array, not JSON lines (one object per line)",
                         f"rename it to {path.with_suffix('.json').name} (a .json file may hold a list of records)")
    if head == "{":
        return DataError(f"{path}: line {number}: holds one JSON document spread over lines, not JSON lines",
                         f"rename it to {path.with_suffix('.json').name}, or write one record per line")
    return None


def _jsonl(path: Path) -> Iterator[Record]:
    first = True
    for number, line in _lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            whole = _not_lines(path, number, line) if first else None
            raise whole or DataError(f"{path}: line {number}: not JSON ({exc.msg} at column {exc.colno})",
                                     "each line must be one JSON object") from None
        if not isinstance(data, dict):
            whole = _not_lines(path, number, line) if first and isinstance(data, list) and data and all(
                isinstance(item, dict) for item in data) else None
            raise whole or DataError(f"{path}: line {number}: expected a JSON object, got {type(data).__name__}")
        first = False
        yield _record(data, f"{path}: line {number}")


def read_jsonl(path: Path) -> list[Record]:
    return list(_jsonl(path))


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


def _csv(path: Path) -> Iterator[Record]:
    reader = csv.DictReader(line for _, line in _lines(path))
    return (_record(dict(row), f"{path}: line {i + 2}") for i, row in enumerate(reader))


def read_csv(path: Path) -> list[Record]:
    return list(_csv(path))


def read_parquet(path: Path, limit: int | None = None) -> list[Record]:
    try:
        import pyarrow.parquet as pq

        if limit is None:
            rows = pq.read_table(str(path)).to_pylist()
        else:
            rows = next(pq.ParquetFile(str(path)).iter_batches(batch_size=limit), None)
            rows = rows.to_pylist() if rows is not None else []
    except Exception as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    return [_record(row, f"{path}: row {i}") for i, row in enumerate(rows)]


READERS = {".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".parquet": read_parquet}
HEAD_RECORDS = 100  # what a check before launch reads of each file


def _head_of_file(path: Path, limit: int) -> list[Record]:
    """The first `limit` records of one file; JSON lines and CSV are read only that far."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(islice(_jsonl(path), limit))
    if suffix == ".csv":
        return list(islice(_csv(path), limit))
    if suffix == ".parquet":
        return read_parquet(path, limit)
    return READERS[suffix](path)[:limit]


def read_records(source: str | Path, head: int | None = None) -> list[Record]:
    """Records of a file, of every data file in a folder, or of a hub dataset's train split; `head`: only the
    first that many of each local file (what a check before launch reads)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
        if not files:
            raise DataError(f"{path}: folder holds no {', '.join(SUFFIXES)} files")
        return [r for f in files for r in read_records(f, head)]
    if path.exists():
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise DataError(f"{path}: unsupported file type {path.suffix!r}", f"use one of {', '.join(SUFFIXES)}")
        records = reader(path) if head is None else _head_of_file(path, head)
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
