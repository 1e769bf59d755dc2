"""Config validation: examples, defaults, one bad config per rule, migration, shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from methods.catalogue import get_catalogue
from methods.json_locate import locate_paths
from methods.validation import validate_config

CAT = get_catalogue()
FILES = sorted(p for m in CAT for p in [m.defaults_path, *(m.example_path(n) for n in ("basic", "advanced", "production"))])


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_and_default_validates(path: Path) -> None:
    text = path.read_text()
    report = validate_config(json.loads(text), text=text, source=str(path)).report
    assert report.ok, [e.render() for e in report.errors]
    assert not any("unknown key" in w.message for w in report.warnings)


DESIGN_EXAMPLES = [
    {"method": "lora", "base_model": "meta-llama/Llama-2-7b-hf",
     "method_specific": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]},
     "training": {"epochs": 3, "batch_size": 4, "learning_rate": 2e-4}},
    {"method": "qlora", "base_model": "meta-llama/Llama-2-70b-hf",
     "method_specific": {"load_in_4bit": True, "r": 64, "lora_alpha": 128,
                         "target_modules": ["q_proj", "v_proj", "k_proj", "o_proj"]},
     "hardware": {"gradient_checkpointing": True, "mixed_precision": True}},
    {"method": "lora", "base_model": "meta-llama/Llama-2-13b-hf",
     "method_specific": {"r": 32, "lora_alpha": 64, "lora_dropout": 0.05,
                         "target_modules": ["q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
     "training": {"epochs": 5, "batch_size": 8, "gradient_accumulation_steps": 4, "learning_rate": 1e-4,
                  "warmup_steps": 500},
     "monitoring": {"wandb_project": "llamafarm_production", "eval_steps": 100, "logging_steps": 10}},
]


@pytest.mark.parametrize("doc", DESIGN_EXAMPLES)
def test_design_examples_validate_as_written(doc: dict) -> None:
    resolved = validate_config(doc)
    assert resolved.report.ok and not resolved.report.warnings, resolved.report.to_dict()
    assert resolved.config.method_specific.r == doc["method_specific"]["r"]
    assert resolved.config.training.max_seq_length == 512  # filled from defaults.json


def test_nested_and_flat_shapes_resolve_the_same() -> None:
    flat = DESIGN_EXAMPLES[0]
    nested = {"method_config": {"method_name": "lora", **{k: v for k, v in flat.items() if k != "method"}}}
    assert validate_config(flat).config == validate_config(nested).config


BAD = [
    ({"method_specific": {"r": 512}}, "method_specific.r", "512 is above the maximum 256 (LoRA rank; typical 8-64)"),
    ({"method_specific": {"r": 0}}, "method_specific.r", "0 is below the minimum 1"),
    ({"method_specific": {"lora_dropout": 1.5}}, "method_specific.lora_dropout", "above the maximum 1"),
    ({"method_specific": {"bias": "some"}}, "method_specific.bias", "'some' is not one of"),
    ({"method_specific": {"target_modules": []}}, "method_specific.target_modules", "too short"),
    ({"method_specific": {"target_modules": "all"}}, "method_specific.target_modules", "all"),
    ({"training": {"epochs": 0}}, "training.epochs", "below the minimum 1"),
    ({"training": {"batch_size": "eight"}}, "training.batch_size", "valid integer"),
    ({"training": {"learning_rate": -1}}, "training.learning_rate", "must be above 0"),
    ({"training": {"lr_scheduler": "cosin"}}, "training.lr_scheduler", "'cosin' is not one of"),
    ({"training": {"gradient_accumulation_steps": 0}}, "training.gradient_accumulation_steps", "minimum 1"),
    ({"training": {"weight_decay": 2}}, "training.weight_decay", "above the maximum"),
    ({"training": "fast"}, "training", "valid dictionary"),
    ({"hardware": {"device": "gpu"}}, "hardware.device", "'gpu' is not a valid value"),
    ({"hardware": {"dataloader_num_workers": -1}}, "hardware.dataloader_num_workers", "minimum 0"),
    ({"hardware": {"mixed_precision": "fp8"}}, "hardware.mixed_precision", "fp8"),
    ({"monitoring": {"logging_steps": 0}}, "monitoring.logging_steps", "minimum 1"),
    ({"data": {"eval_split": 1.5}}, "data.eval_split", "must be below 1"),
    ({"base_model": ""}, "base_model", "too short"),
    ({"version": "9.0"}, "version", "unknown config version '9.0'"),
]


@pytest.mark.parametrize(("patch", "path", "message"), BAD, ids=[b[1] + ":" + str(i) for i, b in enumerate(BAD)])
def test_each_rule_reports_its_path_and_message(patch: dict, path: str, message: str) -> None:
    doc = {"method": "lora", **patch}
    report = validate_config(doc).report
    assert not report.ok
    rendered = [e.render() for e in report.errors if e.path == path]
    assert rendered and message in rendered[0], [e.render() for e in report.errors]


def test_every_error_is_listed_not_only_the_first() -> None:
    doc = {"method": "lora", "method_specific": {"r": 512, "lora_dropout": 3}, "training": {"epochs": 0}}
    paths = {e.path for e in validate_config(doc).report.errors}
    assert paths == {"method_specific.r", "method_specific.lora_dropout", "training.epochs"}


def test_method_rules() -> None:
    assert "unknown method 'lorra'" in validate_config({"method": "lorra"}).report.errors[0].message
    assert "did you mean 'lora'" in validate_config({"method": "lorra"}).report.errors[0].hint
    mismatch = validate_config({"method": "qlora"}, method="lora").report
    assert mismatch.errors[0].path == "method_name" and "--method" in mismatch.errors[0].message
    assert validate_config({}, method="lora").report.ok
    assert "no method given" in validate_config({}).report.errors[0].message
    assert not validate_config([1, 2]).report.ok


WARN = [
    ({"method": "lora", "method_specific": {"r": 32, "lora_alpha": 8}}, "method_specific.lora_alpha", "less than r"),
    ({"method": "qlora", "base_model": "meta-llama/Llama-2-70b-hf", "hardware": {"gradient_checkpointing": False}},
     "hardware.gradient_checkpointing", "70B"),
    ({"method": "lora", "training": {"learning_rate": 0.5}}, "training.learning_rate", "far outside"),
    ({"method": "lora", "trust_remote_code": True}, "trust_remote_code", "will run"),
]


@pytest.mark.parametrize(("doc", "path", "message"), WARN, ids=[w[1] for w in WARN])
def test_warnings_do_not_fail(doc: dict, path: str, message: str) -> None:
    report = validate_config(doc).report
    assert report.ok
    hits = [w for w in report.warnings if w.path == path]
    assert hits and message in hits[0].message


@pytest.mark.parametrize("lenient", [False, True])
def test_a_typo_suggests_the_closest_key_an_error_unless_lenient(lenient: bool) -> None:
    report = validate_config({"method": "lora", "trainig": {}, "method_specific": {"lora_alfa": 3}},
                             lenient=lenient).report
    assert report.ok is lenient
    issues = report.warnings if lenient else report.errors
    hints = {w.path: w.hint for w in issues if "unknown key" in w.message}
    assert hints["method_specific.lora_alfa"] == "did you mean 'lora_alpha'?"
    assert hints["trainig"] == "did you mean 'training'?"


def test_migration_from_1_0() -> None:
    old = {"method_config": {"method_name": "lora", "version": "1.0", "max_seq_length": 256,
                             "training": {"num_train_epochs": 2, "per_device_train_batch_size": 16,
                                          "lr_scheduler_type": "cosine"},
                             "hardware": {"bf16": True}}}
    resolved = validate_config(old)
    report = resolved.report
    assert report.ok and report.migrated_from == "1.0" and not report.warnings
    cfg = resolved.config
    assert (cfg.training.epochs, cfg.training.batch_size, cfg.training.lr_scheduler) == (2, 16, "cosine")
    assert cfg.training.max_seq_length == 256 and cfg.hardware.mixed_precision == "bf16"
    upgraded = resolved.upgraded_document()["method_config"]
    assert upgraded["version"] == "2.0" and "num_train_epochs" not in upgraded["training"]
    assert validate_config(resolved.upgraded_document()).report.migrated_from is None


def test_errors_carry_line_numbers() -> None:
    text = '{\n  "method": "lora",\n  "method_specific": {\n    "r": 512\n  }\n}\n'
    report = validate_config(json.loads(text), text=text).report
    assert (report.errors[0].line, report.errors[0].column) == (4, 5)
    nested = '{"method_config": {\n "method_name": "lora",\n "training": {"epochs": 0}}}'
    assert validate_config(json.loads(nested), text=nested).report.errors[0].line == 3


def test_locate_paths_handles_arrays_and_garbage() -> None:
    pos = locate_paths('{"a": [1, {"b": 2}]}')
    assert pos["a"] == (1, 2) and pos["a[1].b"] == (1, 12)
    assert locate_paths("{not json") == {}
