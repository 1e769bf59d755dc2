"""LLaMA-Factory's identity.json placeholders: a warning naming the file, line and placeholder; replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.data_files import read_records
from engine.data_formats import to_samples
from engine.data_placeholders import check_replacements, placeholder_note, replace_placeholders, sample_texts
from engine.errors import DataError

# the shape of LLaMA-Factory's data/identity.json: an indented JSON array of alpaca records
IDENTITY = [{"instruction": "hi", "input": "", "output": "Hello! I am {{name}}, an AI assistant developed by "
                                                         "{{author}}. How can I assist you today?"},
            {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an AI assistant."}]


def samples(path: Path) -> list:
    return to_samples(read_records(path), "auto", "text")[1]


def test_identity_placeholders_are_named_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY, indent=2))
    note = placeholder_note(samples(path))
    assert note is not None
    assert note.startswith(f"{path}: line 5: {{{{name}}}} is a template placeholder and would be trained literally")
    assert "{{name}} (2 of 2 example(s)), {{author}} (1 of 2 example(s))" in note and "data.replace" in note
    lines = tmp_path / "chat.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "plain"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "I am {{name}}"}]}]))
    assert str(placeholder_note(samples(lines))).startswith(f"{lines}: line 2: {{{{name}}}} is a template")


def test_template_code_with_spaces_is_not_flagged(tmp_path: Path) -> None:
    path = tmp_path / "vue.jsonl"
    path.write_text(json.dumps({"prompt": "Show the count", "completion": "<p>{{ count }}</p>"}) + "\n")
    assert placeholder_note(samples(path)) is None


def test_replacements_reach_every_text(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY))
    done = replace_placeholders(samples(path), check_replacements({"{{name}}": "Aria", "{{author}}": "Lab"}))
    assert placeholder_note(done) is None
    assert "Hello! I am Aria, an AI assistant developed by Lab." in " ".join(sample_texts(done[0]))
    with pytest.raises(DataError, match="data.replace must map each placeholder"):
        check_replacements({"{{name}}": 3})
