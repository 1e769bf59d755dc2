"""data.replace and placeholder warnings wired into prepare(); data.format input_output; the cache key and version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.data import IGNORE, prepare
from engine.models import load_tokenizer
from engine.preview import template_name
from methods.validation import validate_config
from tests.conftest import make_config

IDENTITY = [{"instruction": "hi", "input": "", "output": "Hello! I am {{name}}, an AI assistant developed by "
                                                         "{{author}}."},
            {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an AI assistant."}]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(make_config("lora"))


def identity(tmp_path: Path, name: str = "identity.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(IDENTITY, indent=2))
    return str(path)


def trained_text(tokenizer, example) -> str:
    return str(tokenizer.decode([t for t, label in zip(example.input_ids, example.labels) if label != IGNORE]))


def test_placeholders_are_a_note_for_train_and_eval_data(tokenizer, tmp_path: Path) -> None:
    src, held = identity(tmp_path), identity(tmp_path, "held.json")
    cfg = make_config("lora", data={"eval_path": held})
    notes = prepare(tokenizer, src, cfg.data, 512, 0).notes
    train_note, eval_note = (next(n for n in notes if n.startswith(p)) for p in (f"{src}: line 5", "eval data: "))
    assert "{{name}} is a template placeholder" in train_note and "data.replace" in train_note
    assert eval_note.startswith(f"eval data: {held}: line 5: {{{{name}}}}")


def test_replace_trains_the_value_and_clears_its_warning(tokenizer, tmp_path: Path) -> None:
    src = identity(tmp_path)
    cfg = make_config("lora", data={"eval_split": 0, "replace": {"{{name}}": "Aria"}})
    prepared = prepare(tokenizer, src, cfg.data, 512, 0)
    text = trained_text(tokenizer, prepared.train[0])
    assert "I am Aria, an AI assistant developed by {{author}}." in text and "{{name}}" not in text
    [note] = [n for n in prepared.notes if "placeholder" in n]
    assert note.startswith(f"{src}: line 5: {{{{author}}}}") and "(placeholders: {{author}} (1 of 2" in note
    assert "{{name}} (" not in note


@pytest.mark.parametrize("value, message", [({"{{name}}": 3}, "valid string"), ({"": "x"}, "empty key"),
                                            (["{{name}}"], "valid dictionary")])
def test_replace_must_map_placeholders_to_text(value: object, message: str) -> None:
    report = validate_config({"method": "lora", "data": {"replace": value}}).report
    assert not report.ok and any(e.path.startswith("data.replace") and message in e.message for e in report.errors)
    assert make_config("lora").data.replace == {}


def test_explicit_input_output_format_trains_the_labelled_segments(tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "segments.jsonl"
    path.write_text(json.dumps({"segments": [{"label": False, "text": "Q: hi\nA:"},
                                             {"label": True, "text": " hello there"}]}) + "\n")
    cfg = make_config("lora", data={"format": "input_output", "eval_split": 0})
    prepared = prepare(tokenizer, str(path), cfg.data, 512, 0)
    assert prepared.format == "input_output"
    assert trained_text(tokenizer, prepared.train[0]).strip() == "hello there"  # no EOS added, the prompt masked
    assert template_name(tokenizer, "input_output").startswith("the segments as written (label true trains")


def test_template_name_says_when_message_flags_decide(tokenizer, tmp_path: Path) -> None:
    from engine.data import load_samples

    path = tmp_path / "flags.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "q"},
                                             {"role": "assistant", "content": "a", "train": False},
                                             {"role": "user", "content": "q2"},
                                             {"role": "assistant", "content": "b"}]}) + "\n")
    fmt, samples = load_samples(str(path), make_config("lora").data)
    assert "train / weight flags decide" in template_name(tokenizer, fmt, samples)
    assert "(assistant turns train)" not in template_name(tokenizer, fmt, samples)


def test_cache_key_follows_data_replace(tokenizer, tmp_path: Path) -> None:
    from engine.data_cache import cache_key

    src = identity(tmp_path)
    plain, replaced = make_config("lora"), make_config("lora", data={"replace": {"{{name}}": "Aria"}})
    assert cache_key(tokenizer, src, plain, None) != cache_key(tokenizer, src, replaced, None)


def test_preview_shows_the_replaced_text_as_trained(tmp_path: Path) -> None:
    from engine.preview import preview

    cfg = make_config("lora", data={"eval_split": 0, "replace": {"{{name}}": "Aria", "{{author}}": "Lab"}})
    result = preview(cfg, identity(tmp_path), 1)
    trained = "".join(t["text"] for t in result["examples"][0]["tokens"] if t["trained"])
    assert "I am Aria, an AI assistant developed by Lab." in trained
    assert not any("placeholder" in note for note in result["notes"])
