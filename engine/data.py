"""Turns records into tokenised training examples: loss masks, BOS, truncation, dropped-example report, eval split."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data_chat import chat_segments, render_chat
from engine.data_files import Record, read_records
from engine.data_formats import ALPACA_PROMPT, Sample, detect_format, to_sample, to_samples
from engine.data_placeholders import check_replacements, placeholder_note, replace_placeholders
from engine.errors import DataError
from engine.tokenizer_bos import expects_bos

__all__ = ["ALPACA_PROMPT", "IGNORE", "Example", "PreparedData", "detect_format", "load_samples", "prepare", "prompt_ids",
           "render_chat", "tokenize_record", "tokenize_sample"]
IGNORE = -100
SHOWN = 3  # record locations named in a note


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


@dataclass
class PreparedData:
    train: list[Example]
    eval: list[Example]
    format: str
    truncated: int = 0
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # cause -> count (training and eval data together)


@dataclass
class _Stats:
    total: int = 0
    truncated: int = 0
    truncated_away: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    unused_tools: list[str] = field(default_factory=list)


def with_bos(tokenizer: Any, ids: list[int]) -> list[int]:
    """`ids` starting with exactly one BOS when the model expects one (engine.tokenizer_bos: not GPT-2's shared
    <|endoftext|>): prepended unless the text (e.g. a chat template) already has it."""
    bos = tokenizer.bos_token_id
    return ids if bos is None or (ids and ids[0] == bos) or not expects_bos(tokenizer) else [bos, *ids]


def prompt_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt as training sees them (for generation)."""
    return with_bos(tokenizer, tokenizer(text, add_special_tokens=False)["input_ids"])


def _pieces(tokenizer: Any, sample: Sample) -> list[tuple[str | list[int], bool]]:
    if sample.messages is not None:
        return list(chat_segments(tokenizer, sample.messages, sample.tools, sample.where))
    eos = tokenizer.eos_token_id
    out: list[tuple[str | list[int], bool]] = []
    for text, response in sample.pieces:
        out.append((text, response))
        if response and eos is not None:
            out.append(([eos], True))  # every response ends, so the model learns to stop
    return out


def tokenize_sample(tokenizer: Any, sample: Sample, train_on_prompt: bool) -> Example:
    """Input ids and labels (prompt tokens masked with IGNORE unless train_on_prompt)."""
    ids: list[int] = []
    labels: list[int] = []
    for piece, trainable in _pieces(tokenizer, sample):
        tokens = piece if isinstance(piece, list) else tokenizer(piece, add_special_tokens=False)["input_ids"]
        ids += tokens
        labels += tokens if (trainable or train_on_prompt) else [IGNORE] * len(tokens)
    full = with_bos(tokenizer, ids)
    return Example(full, [IGNORE] * (len(full) - len(ids)) + labels)


def tokenize_record(tokenizer: Any, record: Record, fmt: str, train_on_prompt: bool, text_field: str) -> Example:
    """One record of a known format, tokenised."""
    return tokenize_sample(tokenizer, to_sample(record, fmt, text_field), train_on_prompt)


def _tokenize_all(tokenizer: Any, samples: list[Sample], train_on_prompt: bool,
                  max_len: int) -> tuple[list[Example], _Stats]:
    out, stats = [], _Stats(total=len(samples))
    template = str(getattr(tokenizer, "chat_template", None) or "")
    for sample in samples:
        if sample.tools and "tools" not in template:
            stats.unused_tools.append(sample.where)
        if not sample.has_response and not train_on_prompt:
            stats.empty.append(sample.where)
            continue
        ex = tokenize_sample(tokenizer, sample, train_on_prompt)
        if len(ex.input_ids) > max_len:
            stats.truncated += 1
            ex = Example(ex.input_ids[:max_len], ex.labels[:max_len])
        if all(label == IGNORE for label in ex.labels[1:]):  # the first label is never predicted
            (stats.truncated_away if sample.has_response else stats.empty).append(sample.where)
            continue
        out.append(ex)
    return out, stats


def _examples(where: list[str]) -> str:
    shown = ", ".join(where[:SHOWN])
    return f" (e.g. {shown}{', ...' if len(where) > SHOWN else ''})"


def _notes(stats: _Stats, label: str, max_len: int) -> list[str]:
    notes = []
    if stats.truncated:
        notes.append(f"{label}{stats.truncated} of {stats.total} example(s) longer than max_seq_length={max_len} "
                     "were truncated")
    if stats.truncated_away:
        notes.append(f"{label}{len(stats.truncated_away)} of {stats.total} example(s) have no trainable tokens after "
                     f"truncation to max_seq_length={max_len} and were dropped{_examples(stats.truncated_away)}")
    if stats.empty:
        notes.append(f"{label}{len(stats.empty)} of {stats.total} example(s) have an empty response (nothing to "
                     f"learn) and were dropped{_examples(stats.empty)}")
    if stats.unused_tools:
        notes.append(f"{label}{len(stats.unused_tools)} of {stats.total} example(s) define tools, but the model's chat "
                     f"template does not render tools, so they are left out{_examples(stats.unused_tools)}")
    return notes


def _refuse(source: str, stats: _Stats, max_len: int) -> DataError:
    return DataError(f"{source}: none of the {stats.total} example(s) has trainable tokens: "
                     f"{len(stats.truncated_away)} truncated away at max_seq_length={max_len}, "
                     f"{len(stats.empty)} with an empty response{_examples(stats.truncated_away + stats.empty)}",
                     "raise training.max_seq_length, check the response fields (output, completion, assistant "
                     "turns), or set data.train_on_prompt to also learn from the prompt")


def load_samples(source: str | Path, data_cfg: Any) -> tuple[str, list[Sample]]:
    """The file's samples in its format, with data.replace applied (identity.json's {{name}} -> its value)."""
    fmt, samples = to_samples(read_records(source), data_cfg.format, data_cfg.text_field)
    mapping = check_replacements(getattr(data_cfg, "replace", None) or {})
    return fmt, replace_placeholders(samples, mapping) if mapping else samples


def _placeholder_notes(samples: list[Sample], label: str) -> list[str]:
    """The warning for `{{placeholders}}` left after data.replace (none: no note)."""
    note = placeholder_note(samples)
    return [f"{label}{note}"] if note else []


def prepare(tokenizer: Any, source: str, data_cfg: Any, max_len: int, seed: int,
            eval_source: str | None = None) -> PreparedData:
    """Read, validate, tokenise, truncate and split a dataset; examples with nothing to learn are dropped."""
    fmt, samples = load_samples(source, data_cfg)
    examples, stats = _tokenize_all(tokenizer, samples, data_cfg.train_on_prompt, max_len)
    if not examples:
        raise _refuse(str(source), stats, max_len)
    notes = _placeholder_notes(samples, "") + _notes(stats, "", max_len)
    truncated = stats.truncated
    dropped = {"truncated_away": len(stats.truncated_away), "empty_response": len(stats.empty)}
    eval_examples: list[Example] = []
    eval_path = eval_source or data_cfg.eval_path
    if eval_path:
        eval_fmt, eval_samples = load_samples(eval_path, data_cfg)
        if eval_fmt != fmt:
            notes.append(f"eval data is {eval_fmt} while the training data is {fmt}")
        eval_examples, eval_stats = _tokenize_all(tokenizer, eval_samples, data_cfg.train_on_prompt, max_len)
        if not eval_examples:
            raise _refuse(str(eval_path), eval_stats, max_len)
        notes += _placeholder_notes(eval_samples, "eval data: ") + _notes(eval_stats, "eval data: ", max_len)
        truncated += eval_stats.truncated
        dropped = {"truncated_away": dropped["truncated_away"] + len(eval_stats.truncated_away),
                   "empty_response": dropped["empty_response"] + len(eval_stats.empty)}
    elif data_cfg.eval_split > 0 and len(examples) >= 2:
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        n_eval = min(len(examples) - 1, max(1, round(len(examples) * data_cfg.eval_split)))
        held = set(order[:n_eval])
        eval_examples = [e for i, e in enumerate(examples) if i in held]
        examples = [e for i, e in enumerate(examples) if i not in held]
    return PreparedData(examples, eval_examples, fmt, truncated, notes, {k: v for k, v in dropped.items() if v})
