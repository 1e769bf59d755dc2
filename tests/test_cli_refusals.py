"""Refusals the CLI says before anything loads: `export` into a non-empty --out (the engine's own words), `eval`
of a task file that does not exist; as a user runs them (the installed command, ./runs, relative paths)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.export import MANIFEST, check_out
from lf_tui.cli import export as export_cli

LF_TUI = str(Path(sys.executable).with_name("lf-tui"))


def lf(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([LF_TUI, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_the_cli_refuses_an_out_folder_as_the_engine_does(tmp_path: Path) -> None:
    assert export_cli.MANIFEST == MANIFEST
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    (tmp_path / "previous").mkdir()
    (tmp_path / "previous" / MANIFEST).write_text("{}")
    for name in ("file", "full", "previous", "absent"):
        for force in (False, True):
            refusal = export_cli.out_refusal(tmp_path / name, force)
            try:
                check_out(tmp_path / name, force)
                engine = None
            except EngineError as exc:
                engine = (exc.message, exc.hint)
            assert refusal == engine, (name, force)
    assert export_cli.out_refusal(tmp_path / "full", False) is not None


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"method_name": "lora"}))
    (run / "meta.json").write_text(json.dumps({"run_id": "r1", "method": "lora"}))  # a run folder (not any folder)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    return tmp_path


def test_export_into_a_non_empty_folder_is_refused_before_merging(cwd: Path) -> None:
    refused = lf(cwd, "export", "r1", "--out", "out", "--merged")
    assert refused.returncode == 1 and "merging" not in refused.stderr
    assert f"export error: {cwd / 'out'} exists and is not empty" in refused.stderr and "--force" in refused.stderr


def test_eval_of_a_missing_task_file_is_refused_before_loading(cwd: Path) -> None:
    refused = lf(cwd, "eval", "r1", "--tasks", "sample", "nope.jsonl")
    assert refused.returncode == 1 and "loading" not in refused.stderr
    assert f"data error: {cwd / 'nope.jsonl'}: no such task file" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr
