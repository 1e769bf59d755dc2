"""`lf-tui train`, `quick-train`, `runs`, `attach`, `cancel` and `generate` as a user runs them in a shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

LF = [sys.executable, "-m", "lf_tui"]


def lf(*args: str, runs: Path, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*LF, *args, "--runs-dir", str(runs)], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def test_quick_train_plain_output_and_exit_code(tmp_path: Path, learnable_dataset: Path) -> None:
    runs = tmp_path / "runs"
    proc = lf("quick-train", "--method", "lora", "--dataset", str(learnable_dataset), "--max-steps", "4", runs=runs)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "step 4/4" in proc.stdout and "Run completed" in proc.stdout and "convergence" in proc.stdout
    listing = json.loads(lf("runs", "--json", runs=runs).stdout)
    assert listing[0]["status"] == "completed" and listing[0]["steps"] == 4 and listing[0]["method"] == "lora"
    table = lf("runs", runs=runs).stdout
    assert "completed" in table and "lora" in table
    replay = lf("attach", listing[0]["run_id"], runs=runs)
    assert replay.returncode == 0 and "step 4/4" in replay.stdout
    gen = lf("generate", "--run", listing[0]["run_id"], "--prompt", "Say the greeting.", "--json", runs=runs)
    assert gen.returncode == 0 and set(json.loads(gen.stdout)) == {"prompt", "completion", "base_completion"}


def test_train_rejects_bad_configs_before_starting(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "lora", "method_specific": {"r": 512}}))
    proc = lf("train", "--config", str(bad), runs=runs)
    assert proc.returncode == 1 and "method_specific.r" in proc.stderr
    assert lf("train", "--config", str(tmp_path / "missing.json"), runs=runs).returncode == 2
    assert lf("train", "-c", str(bad), "--dataset", "nope.jsonl", runs=runs).returncode == 1
    assert not runs.exists() or not any(runs.iterdir())  # nothing was started


def test_train_with_config_and_an_empty_dataset_is_refused_before_launch(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"method": "adapters", "training": {"max_steps": 2}}))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = lf("train", "-c", str(cfg), "--dataset", str(empty), runs=runs)
    assert proc.returncode == 2 and "is empty" in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run folder exists


def test_ctrl_c_cancels_with_a_checkpoint_then_resume(tmp_path: Path, learnable_dataset: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.Popen([*LF, "quick-train", "-m", "lora", "--dataset", str(learnable_dataset), "--max-steps",
                             "500", "--runs-dir", str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    for line in proc.stdout:
        if line.startswith("step 3/"):
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Run cancelled" in out
    run_id = json.loads(lf("runs", "--json", runs=runs).stdout)[0]["run_id"]
    cfg_path = runs / run_id / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["training"]["max_steps"] = 8
    cfg_path.write_text(json.dumps(cfg))
    resumed = lf("train", "--resume", run_id, runs=runs)
    assert resumed.returncode == 0 and "step 8/8" in resumed.stdout


def test_detached_run_can_be_cancelled_from_the_shell(tmp_path: Path, learnable_dataset: Path) -> None:
    runs = tmp_path / "runs"
    proc = lf("quick-train", "-m", "lora", "--dataset", str(learnable_dataset), "--max-steps", "100000",
              "--detach", runs=runs)
    assert proc.returncode == 0 and "started run" in proc.stdout
    run_id = proc.stdout.split("started run ")[1].split()[0]
    deadline = time.monotonic() + 120
    while json.loads(lf("runs", "--json", runs=runs).stdout)[0]["steps"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert lf("cancel", run_id, runs=runs).returncode == 0
    while json.loads(lf("runs", "--json", runs=runs).stdout)[0]["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    info = json.loads(lf("runs", "--json", runs=runs).stdout)[0]
    assert info["status"] == "cancelled"
    assert any((runs / run_id / "checkpoints").iterdir())
    assert os.path.exists(runs / run_id / "summary.json")
