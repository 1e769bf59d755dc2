"""Tokenise a dataset once: examples are cached by dataset content, tokenizer, chat template, data settings and code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.data import Example, PreparedData, prepare

# 3: KTO data refused, per-message train/weight flags, the BOS rule (tokenizer_bos), input_output segments,
# placeholders and data.replace; examples tokenised before them are never reused
CACHE_VERSION = "3"
# The code that decides tokenisation: any edit to it invalidates cached examples.
CODE = [Path(__file__).resolve().parent / f"{name}.py" for name in ("data", "data_chat", "data_files", "data_formats",
                                                                        "data_placeholders", "tokenizer_bos")]


def _file_digest(path: Path, h: Any) -> bool:
    if path.is_file():
        h.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return True
    if path.is_dir():
        return all(_file_digest(p, h) for p in sorted(path.iterdir()) if p.is_file())
    return False  # a hub id: not cached (its content can change)


def cache_key(tokenizer: Any, source: str, cfg: Any, eval_source: str | None) -> str | None:
    h = hashlib.sha256(CACHE_VERSION.encode())
    for module in CODE:
        h.update(module.read_bytes())
    for src in (source, eval_source or cfg.data.eval_path):
        if src and not _file_digest(Path(src), h):
            return None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update((backend.to_str() if backend is not None else repr(tokenizer.get_vocab())).encode())
    h.update(str(getattr(tokenizer, "chat_template", "")).encode())
    h.update(json.dumps([cfg.data.model_dump(mode="json"), cfg.training.max_seq_length, cfg.training.seed,
                         tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.bos_token, tokenizer.eos_token,
                         type(tokenizer).__name__], sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def cached_prepare(cache_dir: Path, tokenizer: Any, source: str, cfg: Any, eval_source: str | None) -> PreparedData:
    """prepare() with a JSON cache in the run store (corrupt cache entries are rebuilt)."""
    key = cache_key(tokenizer, source, cfg, eval_source)
    path = cache_dir / f"{key}.json" if key else None
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return PreparedData([Example(*e) for e in data["train"]], [Example(*e) for e in data["eval"]],
                                data["format"], data["truncated"], data["notes"], data["dropped"])
        except (ValueError, KeyError, TypeError):
            pass
    prepared = prepare(tokenizer, source, cfg.data, cfg.training.max_seq_length, cfg.training.seed, eval_source)
    if path is not None:
        from lf_common.files import atomic_write_text

        atomic_write_text(path, json.dumps({
            "train": [[e.input_ids, e.labels] for e in prepared.train],
            "eval": [[e.input_ids, e.labels] for e in prepared.eval],
            "format": prepared.format, "truncated": prepared.truncated, "notes": prepared.notes,
            "dropped": prepared.dropped}))
    return prepared
