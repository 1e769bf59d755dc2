"""Template placeholders left in a dataset (LLaMA-Factory's identity.json `{{name}}`/`{{author}}`): found and replaced."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.data_formats import Sample
from engine.errors import DataError

# `{{name}}` as LLaMA-Factory's identity.json writes it; `{{ name }}` (spaces: Jinja, Vue, Handlebars code) is left
# alone, so that a dataset of template code is not flagged
PLACEHOLDER = re.compile(r"\{\{[A-Za-z_][A-Za-z0-9_]*\}\}")


def sample_texts(sample: Sample) -> list[str]:
    """Every text a sample trains on or sees: its pieces, or its messages' contents."""
    if sample.messages is not None:
        return [m["content"] for m in sample.messages if isinstance(m.get("content"), str)]
    return [text for text, _ in sample.pieces]


def _file_of(where: str) -> str:
    return where.rsplit(": ", 1)[0]


def _line_of(where: str, placeholder: str) -> str:
    """`file: line N` of the placeholder's first occurrence: the record's own line (JSON lines, CSV), else the
    line of the file where it first appears (a JSON array's records are numbered, not lined)."""
    if ": line " in where:
        return where
    path = Path(_file_of(where))
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() and path.suffix == ".json" else ""
    except (OSError, UnicodeDecodeError):
        text = ""
    at = text.find(placeholder)
    return f"{path}: line {text.count(chr(10), 0, at) + 1}" if at >= 0 else where


def placeholder_note(samples: list[Sample]) -> str | None:
    """A warning naming the file, the line and each `{{placeholder}}` the samples would train literally (None: none)."""
    found: dict[str, list[str]] = {}  # placeholder -> where of the samples holding it, in the data's order
    for sample in samples:
        for text in sample_texts(sample):
            for placeholder in PLACEHOLDER.findall(text):
                holders = found.setdefault(placeholder, [])
                if sample.where not in holders[-1:]:
                    holders.append(sample.where)
    if not found:
        return None
    first = next(iter(found))
    listed = ", ".join(f"{p} ({len(w)} of {len(samples)} example(s))" for p, w in found.items())
    return (f"{_line_of(found[first][0], first)}: {first} is a template placeholder and would be trained literally "
            f"(placeholders: {listed}; LLaMA-Factory's identity.json holds {{{{name}}}} and {{{{author}}}}): give each "
            f"its value in the config's data.replace (e.g. \"replace\": {{\"{first}\": \"VALUE\"}}), or replace "
            f"it in the file (e.g. sed -i 's/{first}/VALUE/g' FILE)")


def check_replacements(mapping: Any, where: str = "data.replace") -> dict[str, str]:
    """A placeholder -> value mapping (e.g. {"{{name}}": "Aria"}), validated."""
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                for k, v in mapping.items()):
        raise DataError(f"{where} must map each placeholder to its text", '"replace": {"{{name}}": "Aria"}')
    return dict(mapping)


def replace_placeholders(samples: list[Sample], mapping: dict[str, str]) -> list[Sample]:
    """The samples with every key of `mapping` replaced by its value, in every text piece and message content."""
    def apply(text: str) -> str:
        for key, value in mapping.items():
            text = text.replace(key, value)
        return text

    out = []
    for sample in samples:
        if sample.messages is not None:
            messages = [{**m, "content": apply(m["content"])} if isinstance(m.get("content"), str) else m
                        for m in sample.messages]
            out.append(replace(sample, messages=messages))
        else:
            out.append(replace(sample, pieces=[(apply(text), response) for text, response in sample.pieces]))
    return out
