"""The README's commands exactly as written: the installed `lf-tui`, the default ./runs, relative paths."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LF_TUI = str(Path(sys.executable).with_name("lf-tui"))


def lf(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([LF_TUI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**clean, **(env or {})})


def run_folders(runs: Path) -> list[Path]:
    return [p for p in runs.iterdir() if not p.name.startswith(".")]  # .cache holds tokenised data


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_quick_train_runs_attach_generate_as_the_readme_shows(empty_dir: Path) -> None:
    proc = lf(empty_dir, "quick-train", "-m", "lora", "--max-steps", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the short header, not a dump (the CPU trains in fp32, or bf16 where it has native bf16: AVX512-BF16/AMX)
    assert re.search(r"lora on builtin:tiny-llama · cpu (fp32|bf16) · trainable", proc.stdout), proc.stdout
    assert "config_hash" not in proc.stdout and "step 3/3" in proc.stdout and "Run completed" in proc.stdout
    (run_dir,) = run_folders(empty_dir / "runs")

    listing = lf(empty_dir, "runs", "--json")
    (info,) = json.loads(listing.stdout)
    assert info["status"] == "completed" and info["steps"] == 3 and Path(info["path"]) == run_dir
    assert "completed" in lf(empty_dir, "runs").stdout

    attach = lf(empty_dir, "attach", run_dir.name[:17])  # a unique prefix of the id, as the README allows
    assert attach.returncode == 0 and "Run completed" in attach.stdout and "step 3/3" in attach.stdout

    gen = lf(empty_dir, "generate", "--run", run_dir.name, "--prompt", "Say hello.", "--json")
    assert gen.returncode == 0, gen.stdout + gen.stderr
    assert json.loads(gen.stdout)["prompt"] == "Say hello."


def test_relative_runs_dir_and_variable_from_another_folder(empty_dir: Path) -> None:
    sub = empty_dir / "a" / "b"
    sub.mkdir(parents=True)
    proc = lf(sub, "quick-train", "-m", "adapters", "--max-steps", "2", "--runs-dir", "../store", "--detach")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    store = empty_dir / "a" / "store"
    follow = lf(empty_dir, "attach", run_folders(store)[0].name, "--plain", env={"LF_TUI_RUNS_DIR": "a/store"})
    assert follow.returncode == 0 and "step 2/2" in follow.stdout, follow.stdout + follow.stderr
    listed = json.loads(lf(sub, "runs", "--json", env={"LF_TUI_RUNS_DIR": "../store"}).stdout)
    assert [r["status"] for r in listed] == ["completed"]
    assert not (sub / "runs").exists() and not (empty_dir / "runs").exists()


def test_paths_in_a_config_resolve_against_its_folder(empty_dir: Path, learnable_dataset: Path) -> None:
    from engine.builtin_model import builtin_path

    project = empty_dir / "project"
    shutil.copytree(builtin_path("builtin:tiny-llama"), project / "models" / "tiny")
    (project / "data").mkdir()
    eval_rows = [{"instruction": "Say the greeting.", "input": "", "output": "Hello."}] * 3
    (project / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in eval_rows))
    shutil.copy(learnable_dataset, empty_dir / "train.jsonl")
    (project / "cfg.json").write_text(json.dumps({
        "method": "lora", "base_model": "./models/tiny", "training": {"max_steps": 2},
        "data": {"eval_path": "data/eval.jsonl"}, "monitoring": {"eval_steps": 0, "save_steps": 0}}))
    # the config's paths against project/, the command line's (--dataset) against the working directory
    proc = lf(empty_dir, "train", "-c", "project/cfg.json", "--dataset", "train.jsonl", "--plain")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 eval examples" in proc.stdout
    (run_dir,) = run_folders(empty_dir / "runs")
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["base_model"] == str(project / "models" / "tiny")
    assert saved["data"]["eval_path"] == str(project / "data" / "eval.jsonl")
    assert json.loads((run_dir / "meta.json").read_text())["dataset"] == str(empty_dir / "train.jsonl")


def test_a_run_that_fails_before_its_first_step_prints_the_error_and_hint(empty_dir: Path) -> None:
    proc = lf(empty_dir, "quick-train", "-m", "lora", "--base-model", "./no-such-model", "--plain")
    assert proc.returncode == 1
    assert "model error: cannot load model" in proc.stdout and "no-such-model" in proc.stdout
    assert "hint:" in proc.stdout and "total steps" not in proc.stdout  # no empty summary table
