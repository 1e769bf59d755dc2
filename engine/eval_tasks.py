"""Multiple-choice task files (HellaSwag/MMLU/ARC/PIQA-style JSONL): a context or question, choices, an answer."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import DataError

ASSETS = Path(__file__).resolve().parent / "assets"
SAMPLE_TASK = ASSETS / "sample_mc.jsonl"
SAMPLE_NAME = "sample"  # `--tasks sample`: the bundled file
CONTEXT_KEYS = ("context", "ctx", "prompt", "goal")  # the text the choices continue, as is
QUESTION_KEYS = ("question", "query", "stem")  # a question: "Question: ...\nAnswer:"
CHOICE_KEYS = ("choices", "endings", "options")
ANSWER_KEYS = ("answer", "label", "gold", "answer_index", "answerKey", "target")
LETTERS = string.ascii_uppercase
SHAPES = ('{"question" (or "context", "ctx", "prompt", "goal"), "choices" (or "endings", "options"; or keys '
          '"A".."D", or "sol1"/"sol2"), "answer" (or "label", "gold", "answerKey"): an index, "2", or a letter}')


@dataclass
class Question:
    where: str
    context: str
    choices: list[str]
    answer: int


@dataclass
class Task:
    name: str
    source: str
    questions: list[Question]


def _fail(where: str, message: str) -> DataError:
    return DataError(f"{where}: {message}", f"each line is one JSON object: {SHAPES}")


def _first(record: Any, keys: tuple[str, ...]) -> tuple[str, Any] | None:
    if not isinstance(record, dict):
        return None
    return next(((k, record[k]) for k in keys if record.get(k) is not None), None)


def _context(record: dict[str, Any], where: str) -> str:
    found = _first(record, CONTEXT_KEYS)
    if found is None:
        question = _first(record, QUESTION_KEYS)
        if question is not None and isinstance(question[1], dict):  # ARC: {"question": {"stem", "choices"}}
            question = _first(question[1], QUESTION_KEYS)
        if question is None:
            raise _fail(where, f"no context or question (fields {sorted(record)})")
        key, value = question
        if not isinstance(value, str):
            raise _fail(where, f"field {key!r} must be a string, got {type(value).__name__}")
        return f"Question: {value.strip()}\nAnswer:"
    key, value = found
    if not isinstance(value, str):
        raise _fail(where, f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _choices(record: dict[str, Any], where: str) -> tuple[list[str], list[str]]:
    """(choice texts, their labels: "A", "B"... unless the file names them)."""
    nested = record.get("question") if isinstance(record.get("question"), dict) else {}
    found = _first(record, CHOICE_KEYS) or _first(nested, CHOICE_KEYS)
    if found is None:
        lettered = [k for k in LETTERS if isinstance(record.get(k), str)]
        if len(lettered) >= 2:
            return [record[k] for k in lettered], lettered
        solutions = [record[k] for k in ("sol1", "sol2") if isinstance(record.get(k), str)]
        if len(solutions) == 2:
            return solutions, ["A", "B"]
        raise _fail(where, f"no choices (fields {sorted(record)})")
    key, value = found
    if isinstance(value, dict) and isinstance(value.get("text"), list):  # HF ARC: {"text": [...], "label": [...]}
        texts, labels = value["text"], value.get("label") or list(LETTERS[:len(value["text"])])
    elif isinstance(value, list) and value and all(isinstance(c, dict) for c in value):  # [{"text", "label"}]
        texts = [c.get("text") for c in value]
        labels = [str(c.get("label", LETTERS[i])) for i, c in enumerate(value)]
    else:
        texts, labels = value, list(LETTERS[:len(value)]) if isinstance(value, list) else []
    if not isinstance(texts, list) or len(texts) < 2 or not all(isinstance(t, str) and t for t in texts):
        raise _fail(where, f"field {key!r} must list at least two non-empty strings")
    return texts, [str(label) for label in labels]


def _answer(record: dict[str, Any], where: str, labels: list[str]) -> int:
    nested = record.get("question") if isinstance(record.get("question"), dict) else {}
    found = _first(record, ANSWER_KEYS) or _first(nested, ANSWER_KEYS)
    if found is None:
        raise _fail(where, f"no answer (fields {sorted(record)})")
    key, value = found
    index: int | None = None
    if isinstance(value, bool):
        index = None
    elif isinstance(value, int):
        index = value
    elif isinstance(value, str) and value.strip() in labels:  # a letter, or a label the file gives ("1" in ARC)
        index = labels.index(value.strip())
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():  # HellaSwag's "2"
        index = int(value.strip())
    if index is None or not 0 <= index < len(labels):
        raise _fail(where, f"field {key!r} = {value!r} is not the index (0-{len(labels) - 1}) or the letter of a choice")
    return index


def parse_question(record: Any, where: str) -> Question:
    if not isinstance(record, dict):
        raise _fail(where, f"expected a JSON object, got {type(record).__name__}")
    choices, labels = _choices(record, where)
    return Question(where, _context(record, where), choices, _answer(record, where, labels))


def read_task(path: Path) -> Task:
    """Every question of a JSONL file (a .json list works too); a bad line is a DataError naming file:line."""
    if not path.is_file():
        raise DataError(f"{path}: no such task file", "give a JSONL file of questions, `sample`, or an lm-eval task")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    rows: list[tuple[Any, str]] = []
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = [(r, f"{path}: record {i}") for i, r in enumerate(json.loads(text))]
        except ValueError as exc:
            raise DataError(f"{path}: not JSON ({exc})") from None
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((json.loads(line), f"{path}:{number}"))
            except json.JSONDecodeError as exc:
                raise _fail(f"{path}:{number}", f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not rows:
        raise DataError(f"{path}: holds no questions", f"each line is one JSON object: {SHAPES}")
    return Task(path.stem, str(path), [parse_question(r, where) for r, where in rows])


def task_file(value: str) -> Path | None:
    """The task file `value` names (`sample` is the bundled one), or None for an lm-eval task name."""
    if value == SAMPLE_NAME:
        return SAMPLE_TASK
    path = Path(value).expanduser()
    if path.exists() or value.endswith((".jsonl", ".json")) or "/" in value:
        return path
    return None
