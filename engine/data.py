"""Turns records into tokenised training examples: format detection, templates, loss masks, eval split."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from engine.data_files import Record, read_records
from engine.errors import DataError

ALPACA_PROMPT = "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
IGNORE = -100


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


def detect_format(record: Record, text_field: str) -> str:
    if "messages" in record:
        return "chat"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if text_field in record:
        return "text"
    raise DataError(f"{record.where}: cannot tell the format from fields {sorted(record)}",
                    f"alpaca needs instruction/output, chat needs messages, text needs {text_field!r}")


def _field(record: Record, name: str, required: bool = True) -> str:
    if name not in record or record[name] is None:
        if required:
            raise DataError(f"{record.where}: missing field {name!r}")
        return ""
    value = record[name]
    if not isinstance(value, str):
        raise DataError(f"{record.where}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def alpaca_pieces(record: Record) -> tuple[str, str]:
    instruction, extra = _field(record, "instruction"), _field(record, "input", required=False)
    input_block = f"### Input:\n{extra}\n\n" if extra.strip() else ""
    return ALPACA_PROMPT.format(instruction=instruction, input_block=input_block), _field(record, "output")


def _messages(record: Record) -> list[dict[str, str]]:
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{record.where}: field 'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"{record.where}: messages[{i}] needs string 'role' and 'content'")
    return messages


def render_chat(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    text = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")


def chat_segments(tokenizer: Any, record: Record) -> list[tuple[str, bool]]:
    """(text, trainable) pieces of a conversation: assistant turns train, the rest is context."""
    messages = _messages(record)
    pieces, previous = [], ""
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            prompt = render_chat(tokenizer, messages[:i], add_generation_prompt=True)
            pieces.append((prompt[len(previous):], False))
            previous = prompt
        rendered = render_chat(tokenizer, messages[: i + 1])
        pieces.append((rendered[len(previous):], message["role"] == "assistant"))
        previous = rendered
    return [(t, trainable) for t, trainable in pieces if t]


def tokenize_record(tokenizer: Any, record: Record, fmt: str, train_on_prompt: bool, text_field: str) -> Example:
    if fmt == "alpaca":
        prompt, answer = alpaca_pieces(record)
        segments = [(prompt, False), (answer, True)]
    elif fmt == "chat":
        segments = chat_segments(tokenizer, record)
    else:
        segments = [(_field(record, text_field), True)]
    ids: list[int] = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    labels: list[int] = [IGNORE] * len(ids)
    for text, trainable in segments:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if (trainable or train_on_prompt) else [IGNORE] * len(piece)
    if fmt != "chat" and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    return Example(ids, labels)


def prepare(tokenizer: Any, source: str, data_cfg: Any, max_len: int, seed: int,
            eval_source: str | None = None) -> PreparedData:
    """Read, validate, tokenise, truncate and split a dataset."""
    records = read_records(source)
    fmt = data_cfg.format if data_cfg.format != "auto" else detect_format(records[0], data_cfg.text_field)
    examples, truncated = _tokenize_all(tokenizer, records, fmt, data_cfg, max_len)
    eval_examples: list[Example] = []
    notes = []
    if eval_source or data_cfg.eval_path:
        eval_records = read_records(eval_source or data_cfg.eval_path)
        eval_examples, more = _tokenize_all(tokenizer, eval_records, fmt, data_cfg, max_len)
        truncated += more
    elif data_cfg.eval_split > 0 and len(examples) >= 2:
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        n_eval = min(len(examples) - 1, max(1, round(len(examples) * data_cfg.eval_split)))
        held = set(order[:n_eval])
        eval_examples = [e for i, e in enumerate(examples) if i in held]
        examples = [e for i, e in enumerate(examples) if i not in held]
    if truncated:
        notes.append(f"{truncated} example(s) longer than max_seq_length={max_len} were truncated")
    return PreparedData(examples, eval_examples, fmt, truncated, notes)


def _tokenize_all(tokenizer: Any, records: list[Record], fmt: str, data_cfg: Any, max_len: int):
    out, truncated = [], 0
    for record in records:
        if fmt == "chat" and "messages" not in record:
            raise DataError(f"{record.where}: missing field 'messages'", "every chat record needs messages")
        ex = tokenize_record(tokenizer, record, fmt, data_cfg.train_on_prompt, data_cfg.text_field)
        if len(ex.input_ids) > max_len:
            truncated += 1
            ex = Example(ex.input_ids[:max_len], ex.labels[:max_len])
        if all(label == IGNORE for label in ex.labels[1:]):
            continue  # nothing to learn (e.g. the answer was truncated away)
        out.append(ex)
    if not out:
        raise DataError(f"{records[0].where.split(':')[0]}: no example has trainable tokens",
                        "raise training.max_seq_length or check the response fields")
    return out, truncated
