"""Record shapes (alpaca, sharegpt, chat, prompt_completion, input_output, text): detection, validation, normalisation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from engine.data_files import Record
from engine.errors import DataError

ALPACA_PROMPT = "### Instruction:\n{instruction}\n\n{input_block}### Response:\n"
FORMATS = ("alpaca", "sharegpt", "chat", "prompt_completion", "input_output", "text")
# axolotl's template-free input_output records: {"segments": [{"label": bool, "text": str}]}, the text joined as is.
# Their samples are messages of this role (engine.data_chat takes them as they are, no chat template, no EOS added).
SEGMENT_ROLE = "segment"
# Role names of ShareGPT (LLaMA-Factory and axolotl) and their OpenAI/chat-template equivalents.
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
                  "function_call": "assistant", "observation": "tool", "tool": "tool"}
PREFERENCE_FIELDS = ("chosen", "rejected")
TRAIN_KEY = "train"  # axolotl's per-message flag: the message trains (true) or is masked (false), whatever its role


def describe_formats(text_field: str) -> str:
    """The supported shapes with their required (and optional) fields, for error hints."""
    return ("supported shapes: alpaca {instruction, output} (optional input, system, history); "
            "sharegpt {conversations: [{from: human|gpt|system|function_call|observation, value}]} "
            "(optional system, tools); chat {messages: [{role, content}]} (optional tools); "
            "prompt_completion {prompt, completion}; input_output {segments: [{label: true|false, text}]}; "
            f"text {{{text_field}}}")


@dataclass
class Sample:
    """One record in a common form: text pieces (alpaca, prompt_completion, text) or a conversation (chat)."""

    where: str
    pieces: list[tuple[str, bool]] = field(default_factory=list)  # (text, is_response); EOS follows a response
    messages: list[dict[str, Any]] | None = None
    tools: list[Any] | None = None
    has_response: bool = True  # False when every response (output, completion, assistant turn) is empty


def _present(record: Record, name: str) -> bool:
    return name in record and record[name] is not None


def _fields(record: Record) -> list[str]:
    return sorted(k for k in record if record[k] is not None)


def check_not_preference(record: Record) -> None:
    """Preference data (DPO/ORPO/KTO) has no single target: refuse it instead of training on the wrong text."""
    found = [f for f in PREFERENCE_FIELDS if _present(record, f)]
    kto = "kto_tag" if _present(record, "kto_tag") else "label" if isinstance(record.get("label"), bool) else None
    if kto and not found:  # KTO (TRL's unpaired preference, LLaMA-Factory's kto_en_demo): a verdict per answer
        verdict = json.dumps(record[kto]) if isinstance(record[kto], (bool, int, str)) else "a verdict"
        raise DataError(f"{record.where}: looks like KTO preference data (field {kto}: {verdict}): lf-tui trains "
                        "supervised fine-tuning only, and would train every answer, the ones labelled false "
                        "(undesirable) too",
                        f"keep only the records whose {kto!r} is true and drop the {kto!r} field, or train it "
                        "with a KTO trainer (TRL, LLaMA-Factory stage kto)")
    if found:
        raise DataError(f"{record.where}: looks like preference data (fields {', '.join(found)}): lf-tui trains "
                        "supervised fine-tuning only, and this record has no single target to learn",
                        "keep only the preferred answer (e.g. rename 'chosen' to 'completion' or 'output' and drop "
                        "'rejected'), or train it with a DPO/ORPO/KTO trainer")


def detect_format(records: list[Record], text_field: str) -> str:
    """The shape of a dataset, read from its first record (later records are checked against it)."""
    record = records[0]
    check_not_preference(record)
    if _present(record, "messages"):
        return "chat"
    if _present(record, "conversations"):
        return "sharegpt"
    if _present(record, "instruction") and _present(record, "output"):
        return "alpaca"
    if _present(record, "prompt") and _present(record, "completion"):
        return "prompt_completion"
    if _present(record, "segments"):
        return "input_output"
    if _present(record, text_field):
        return "text"
    raise DataError(f"{record.where}: cannot tell the format from fields {_fields(record)}",
                    f"{describe_formats(text_field)}; rename the fields, or set data.text_field for raw text")


REQUIRED = {"alpaca": ("instruction", "output"), "sharegpt": ("conversations",), "chat": ("messages",),
            "prompt_completion": ("prompt", "completion"), "input_output": ("segments",)}


def _check_shape(record: Record, fmt: str, text_field: str, origin: str) -> None:
    check_not_preference(record)
    required = REQUIRED.get(fmt, (text_field,))
    missing = [f for f in required if not _present(record, f)]
    if missing:
        other = [f for f in ("messages", "conversations") if _present(record, f) and f not in required]
        hint = (f"set data.format to {'chat' if other[0] == 'messages' else 'sharegpt'} (or auto) for this data"
                if other else f"make every record the same shape, or set data.format; {describe_formats(text_field)}")
        raise DataError(f"{record.where}: missing field {missing[0]!r} of the {fmt} format ({origin}); "
                        f"this record has fields {_fields(record)}, {fmt} needs {list(required)}", hint)


def _text(record: Record, name: str, required: bool = True) -> str:
    if not _present(record, name):
        if required:
            raise DataError(f"{record.where}: missing field {name!r}", f"this record has fields {_fields(record)}")
        return ""
    value = record[name]
    if not isinstance(value, str):
        hint = ("a list of answers usually means preference data, which is not supported"
                if isinstance(value, list) and name == "output" else "give the text as a JSON string")
        raise DataError(f"{record.where}: field {name!r} must be a string, got {type(value).__name__}", hint)
    return value


def _alpaca(record: Record) -> Sample:
    system = _text(record, "system", required=False)
    history = record.get("history") or []
    if not isinstance(history, list) or not all(
            isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(s, str) for s in t) for t in history):
        raise DataError(f"{record.where}: field 'history' must be a list of [instruction, response] string pairs",
                        'e.g. "history": [["What is 2+2?", "4"]]')
    instruction, extra, output = _text(record, "instruction"), _text(record, "input", False), _text(record, "output")
    pieces: list[tuple[str, bool]] = []
    prefix = f"{system}\n\n" if system.strip() else ""
    for question, answer in history:
        pieces += [(prefix + ALPACA_PROMPT.format(instruction=question, input_block=""), False), (answer, True)]
        prefix = ""
    input_block = f"### Input:\n{extra}\n\n" if extra.strip() else ""
    pieces += [(prefix + ALPACA_PROMPT.format(instruction=instruction, input_block=input_block), False),
               (output, True)]
    return Sample(record.where, pieces, has_response=any(t.strip() for t, r in pieces if r))


def _content(value: Any, where: str, message: dict[str, Any]) -> str:
    if isinstance(value, str):
        return value
    if value is None and message.get("tool_calls"):
        return ""
    if isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") == "text":
                has = f"it has {sorted(k for k in part if k != 'type')}" if len(part) > 1 else "it has no other key"
                got = "" if "text" not in part else f"; its 'text' is a {type(part['text']).__name__}"
                raise DataError(f"{where}.content[{j}] is a text part without a 'text' string ({has}{got})",
                                'a text part holds its text under the key "text": {"type": "text", "text": "..."}'
                                + (" (rename 'value' to 'text')" if "value" in part else ""))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise DataError(f"{where}.content[{j}] is a {kind!r} part: only text parts are supported",
                                'give content as a string or a list of {"type": "text", "text": ...} parts')
        return "".join(texts)
    raise DataError(f"{where}: 'content' must be a string or a list of text parts, got {type(value).__name__}")


def _train_flag(raw: dict[str, Any], where: str) -> bool | None:
    """A message's own loss switch: axolotl's `train` (true/false), or `weight` (0/1: OpenAI's fine-tuning format, axolotl's
    sharegpt); None: unset."""
    if raw.get("train_detail") is not None:
        raise DataError(f"{where}: 'train_detail' (axolotl's per-character spans) is not supported",
                        "split the message so that each part is wholly trained or not, and give each a "
                        "'train' true/false")
    train, weight = raw.get("train"), raw.get("weight")
    if train is not None:
        if not isinstance(train, bool):
            raise DataError(f"{where}: 'train' must be true or false, got {train!r}",
                            "axolotl's per-message flag: true trains the message, false masks it")
        return train
    if weight is not None:
        if isinstance(weight, bool) or weight not in (0, 1):
            raise DataError(f"{where}: 'weight' must be 0 or 1, got {weight!r}",
                            "a message is wholly trained (1) or masked (0); lf-tui does not scale a message's loss")
        return weight == 1
    return None


def trains(message: dict[str, Any]) -> bool:
    """Whether a message's tokens carry the loss: its `train` flag when set, else only assistant turns do."""
    flag = message.get(TRAIN_KEY)
    return flag if isinstance(flag, bool) else message["role"] == "assistant"


def _message(raw: Any, where: str) -> dict[str, Any]:
    message = _plain_message(raw, where)
    message.pop("weight", None)
    message.pop(TRAIN_KEY, None)
    flag = _train_flag(raw, where)
    if flag is not None:
        message[TRAIN_KEY] = flag
    return message


def _plain_message(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, dict) and raw.get("from") is not None and raw.get("role") is None:  # ShareGPT entry
        role, value = raw.get("from"), raw.get("value")
        if role not in SHAREGPT_ROLES:
            raise DataError(f"{where}: unknown speaker 'from': {role!r}",
                            f"ShareGPT 'from' must be one of {', '.join(SHAREGPT_ROLES)}")
        if not isinstance(value, str):
            raise DataError(f"{where}: 'value' must be a string, got {type(value).__name__}",
                            'each turn is {"from": ..., "value": "text"}')
        return {"role": SHAREGPT_ROLES[role], "content": value}
    if not isinstance(raw, dict) or not isinstance(raw.get("role"), str):
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{where}: needs string 'role' and 'content' (or ShareGPT 'from' and 'value'), has {keys}",
                        '{"role": "user", "content": "hi"} or {"from": "human", "value": "hi"}')
    if "content" not in raw and not raw.get("tool_calls"):
        raise DataError(f"{where}: needs string 'role' and 'content', has {sorted(raw)}",
                        '{"role": "user", "content": "hi"}')
    message = {k: v for k, v in raw.items() if v is not None}  # parquet/hub rows fill absent keys with None
    message["content"] = _content(raw.get("content"), where, raw)
    return message


def _tools(record: Record) -> list[Any] | None:
    tools = record.get("tools")
    if tools is None or tools == "":
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as exc:
            raise DataError(f"{record.where}: field 'tools' is not JSON ({exc.msg} at column {exc.colno})",
                            "give tools as a JSON list of function definitions (or a string holding one)") from None
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        raise DataError(f"{record.where}: field 'tools' must be a list of function definitions")
    return tools


def _conversation(record: Record, key: str) -> Sample:
    turns = record[key]
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{record.where}: field {key!r} must be a non-empty list of turns",
                        f"got {type(turns).__name__}" + (" (empty)" if turns == [] else ""))
    messages = [_message(m, f"{record.where}: {key}[{i}]") for i, m in enumerate(turns)]
    system = record.get("system")
    if isinstance(system, str) and system.strip() and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    answered = any(trains(m) and (m["content"].strip() or m.get("tool_calls")) for m in messages)
    return Sample(record.where, messages=messages, tools=_tools(record), has_response=answered)


def _prompt_completion(record: Record) -> Sample:
    prompt, completion = record["prompt"], record["completion"]
    if isinstance(prompt, list) and isinstance(completion, list):  # TRL's conversational prompt-completion
        messages = [_message(m, f"{record.where}: prompt[{i}]") for i, m in enumerate(prompt)]
        replies = [_message(m, f"{record.where}: completion[{i}]") for i, m in enumerate(completion)]
        answered = any(trains(m) and m["content"].strip() for m in replies)
        return Sample(record.where, messages=messages + replies, tools=_tools(record), has_response=answered)
    prompt, completion = _text(record, "prompt"), _text(record, "completion")
    return Sample(record.where, [(prompt, False), (completion, True)], has_response=bool(completion.strip()))


def _input_output(record: Record) -> Sample:
    """axolotl's template-free format: segments trained where label is true, masked where false, joined as is."""
    segments = record["segments"]
    if not isinstance(segments, list) or not segments:
        raise DataError(f"{record.where}: field 'segments' must be a non-empty list of {{label, text}} segments",
                        f"got {type(segments).__name__}" + (" (empty)" if segments == [] else ""))
    messages = []
    for i, segment in enumerate(segments):
        where = f"{record.where}: segments[{i}]"
        if not isinstance(segment, dict) or not isinstance(segment.get("text"), str):
            has = sorted(segment) if isinstance(segment, dict) else type(segment).__name__
            raise DataError(f"{where}: needs a string 'text' and a boolean 'label', has {has}",
                            '{"label": true, "text": "trained text"} or {"label": false, "text": "masked text"}')
        if not isinstance(segment.get("label"), bool):
            raise DataError(f"{where}: 'label' must be true (trained) or false (masked), got {segment.get('label')!r}",
                            '{"label": true, "text": "trained text"} or {"label": false, "text": "masked text"}')
        messages.append({"role": SEGMENT_ROLE, "content": segment["text"], TRAIN_KEY: segment["label"]})
    answered = any(m[TRAIN_KEY] and m["content"].strip() for m in messages)
    return Sample(record.where, messages=messages, has_response=answered)


def to_sample(record: Record, fmt: str, text_field: str, origin: str = "data.format") -> Sample:
    """Validate one record against `fmt` and bring it to the common form."""
    _check_shape(record, fmt, text_field, origin)
    if fmt == "alpaca":
        return _alpaca(record)
    if fmt in ("chat", "sharegpt"):
        return _conversation(record, "messages" if fmt == "chat" else "conversations")
    if fmt == "prompt_completion":
        return _prompt_completion(record)
    if fmt == "input_output":
        return _input_output(record)
    text = _text(record, text_field)
    return Sample(record.where, [(text, True)], has_response=bool(text.strip()))


def to_samples(records: list[Record], fmt: str, text_field: str) -> tuple[str, list[Sample]]:
    """(format, samples) of a dataset; format "auto" is detected from the first record."""
    if fmt == "auto":
        fmt = detect_format(records, text_field)
        origin = f"detected from {records[0].where}"
    else:
        origin = f"data.format={fmt}"
    return fmt, [to_sample(r, fmt, text_field, origin) for r in records]
