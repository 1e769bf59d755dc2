"""Unknown config keys are errors where a config is about to train (train, the editor, Ctrl+R), warnings only with
`validate-config --lenient`: the validator, the editor's check and the installed CLI from an empty folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lf_tui.editor_state import check_text
from methods.validation import validate_config

LF_TUI = Path(sys.executable).with_name("lf-tui")
STAGE_DPO = {"method": "lora", "training": {"stage": "dpo", "max_steps": 1}}


def _lf(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LF_TUI), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}, stdin=subprocess.DEVNULL)


def test_an_unknown_key_is_an_error_with_its_fix_and_a_warning_when_lenient() -> None:
    strict = validate_config(STAGE_DPO).report
    assert not strict.ok and [e.path for e in strict.errors] == ["training.stage"]
    assert "SFT" in strict.errors[0].hint  # LLaMA-Factory's key: what this config says instead
    lenient = validate_config(STAGE_DPO, lenient=True).report
    assert lenient.ok and [w.path for w in lenient.warnings] == ["training.stage"]
    assert "is ignored" in lenient.warnings[0].message
    typo = validate_config({"method": "lora", "trainig": {}, "method_specific": {"lora_alfa": 3}}).report
    assert {e.path: e.hint for e in typo.errors} == {"trainig": "did you mean 'training'?",
                                                     "method_specific.lora_alfa": "did you mean 'lora_alpha'?"}
    secret = validate_config({"method": "lora", "hf_token": "hf_secret0value"}).report
    assert not secret.ok and "environment" in secret.errors[0].hint and "hf_secret0value" not in str(secret.to_dict())


def test_schema_and_version_are_accepted_and_other_top_level_keys_are_not() -> None:
    for document in ({"$schema": "methods/base_schema.json", "method": "lora", "version": "2.0"},
                     {"$schema": "methods/base_schema.json", "method_config": {"method_name": "lora"}}):
        report = validate_config(document).report
        assert report.ok and not report.warnings, report.to_dict()
    # what lf-tui fuse records in a fused run's config.json, which export, generate and serve validate again
    fused = {"method_config": {"method_name": "lora", "fusion": {"combination": "linear", "weights": [1.0]}}}
    assert validate_config(fused).report.ok and not validate_config(fused).report.warnings
    stray = validate_config({"method_config": {"method_name": "lora"}, "notes": "x"}).report
    assert not stray.ok and stray.errors[0].path == "notes"
    assert validate_config({"method_config": {"method_name": "lora"}, "notes": "x"}, lenient=True).report.ok


def test_the_editor_refuses_an_unknown_key_on_its_line() -> None:
    text = '{\n  "method": "lora",\n  "training": {\n    "stage": "dpo"\n  }\n}\n'
    check = check_text(text, None)
    assert [(e.path, e.line) for e in check.errors] == [("training.stage", 4)]


def test_train_refuses_before_a_run_folder_exists_and_validate_config_lenient_warns(tmp_path: Path) -> None:
    (tmp_path / "my.json").write_text(json.dumps(STAGE_DPO))
    (tmp_path / "data.jsonl").write_text(json.dumps({"instruction": "Say hi.", "output": "Hi!"}) + "\n")
    train = _lf(tmp_path, "train", "-c", "my.json", "--dataset", "data.jsonl")
    assert train.returncode != 0 and "training.stage" in train.stdout + train.stderr
    assert "Traceback" not in train.stderr and not (tmp_path / "runs").exists()
    checked = _lf(tmp_path, "validate-config", "-c", "my.json")
    assert checked.returncode == 1 and "training.stage" in checked.stdout and "invalid" in checked.stdout
    lenient = _lf(tmp_path, "validate-config", "-c", "my.json", "--lenient")
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert "warning" in lenient.stdout and "training.stage: unknown key is ignored" in lenient.stdout
