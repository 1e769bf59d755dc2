"""Hostile configs: whatever the bytes, validation answers with a report or a clear unusable-input error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lf_tui.cli import main
from methods.config_file import ConfigInputError, parse_config_text
from methods.validation import validate_config

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
sections = st.fixed_dictionaries({}, optional={
    "method": st.sampled_from(["lora", "qlora", "adapters", "nope", ""]) | json_values,
    "training": json_values | st.fixed_dictionaries({}, optional={
        "epochs": json_values, "batch_size": json_values, "learning_rate": json_values}),
    "method_specific": json_values | st.fixed_dictionaries({}, optional={"r": json_values,
                                                                         "target_modules": json_values}),
    "hardware": json_values, "version": json_values,
})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(sections)
def test_any_structure_gets_a_report_not_a_crash(document: dict) -> None:
    resolved = validate_config(document)
    report = resolved.report
    assert report.ok == (resolved.config is not None)
    for issue in report.errors + report.warnings:
        assert isinstance(issue.path, str) and issue.message
    json.dumps(report.to_dict())


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_names_the_problem(text: str) -> None:
    try:
        document = parse_config_text(text, "x.json")
    except ConfigInputError as exc:
        assert str(exc).startswith("x.json:")
        return
    validate_config(document, text=text)


def test_deeply_nested_junk(tmp_path: Path, capsys) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100000 + "]" * 100000)
    assert main(["validate-config", "-c", str(path)]) == 2
    assert "deep.json" in capsys.readouterr().err
    nested = {"method": "lora", "training": {"a": {"b": {"c": {"d": [1, {"e": None}]}}}}}
    report = validate_config(nested).report
    assert not report.ok and report.errors[0].path == "training.a"
    report = validate_config(nested, lenient=True).report
    assert report.ok and report.warnings[0].path == "training.a"


def test_huge_file_is_refused_without_reading_it_all(tmp_path: Path, capsys) -> None:
    path = tmp_path / "huge.json"
    with open(path, "w") as fh:
        fh.write('{"method": "lora", "pad": "')
        fh.write("x" * (5 * 1024 * 1024))
        fh.write('"}')
    assert main(["validate-config", "-c", str(path)]) == 2
    assert "too large" in capsys.readouterr().err


@pytest.mark.parametrize("raw", [b"\xc3\x28", b'{"method": "lora"}\x00\xff', b"\xef\xbb\xbf"])
def test_non_utf8_and_odd_bytes(tmp_path: Path, capsys, raw: bytes) -> None:
    path = tmp_path / "odd.json"
    path.write_bytes(raw)
    assert main(["validate-config", "-c", str(path)]) == 2
    assert "odd.json" in capsys.readouterr().err


def test_wrong_types_everywhere_are_all_listed() -> None:
    doc = {"method": "lora", "training": {"epochs": "three", "batch_size": [4], "learning_rate": {}},
           "hardware": {"gradient_checkpointing": "maybe"}, "method_specific": {"r": 1.5, "bias": 3}}
    paths = {e.path for e in validate_config(doc).report.errors}
    assert paths >= {"training.epochs", "training.batch_size", "training.learning_rate",
                     "hardware.gradient_checkpointing", "method_specific.r", "method_specific.bias"}
