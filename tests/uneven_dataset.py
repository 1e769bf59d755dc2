"""A small dataset of distinct records of uneven lengths, written by a test (one record repeated cannot tell a wrong
per-rank normalisation or data split, or a resume that replays the wrong examples, from a right one)."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = "the quick brown fox jumps over a lazy dog while seven small birds sing softly in tall green trees".split()


def uneven_records(n: int = 24) -> list[dict[str, str]]:
    """`n` alpaca records, no two alike, their answers from 1 to 19 words long (lengths out of order)."""
    records = []
    for i in range(n):
        words = 1 + (i * 7) % len(WORDS)
        records.append({"instruction": f"Say the first {words} words, then number {i}.", "input": "",
                        "output": " ".join(WORDS[:words]) + f", number {i}."})
    return records


def write_uneven_dataset(path: Path, n: int = 24) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in uneven_records(n)), encoding="utf-8")
    return path
