"""Resuming a run whose folder has turned read-only: one sentence before any engine starts, nothing lost."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ended_fixtures import ended_run

LF_TUI = shutil.which("lf-tui", path=str(Path(__file__).resolve().parents[1] / ".venv" / "bin")) or "lf-tui"


def test_resume_into_a_read_only_store_is_refused_before_launch(tmp_path: Path) -> None:
    run = ended_run(tmp_path / "runs", "cancelled")
    before = sorted(p.name for p in run.path.iterdir())
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    script = (f"mount --bind runs runs && mount -o remount,ro,bind runs && {LF_TUI} train --resume {run.run_id} "
              "--runs-dir runs 2>resume.err; echo $? > resume.rc")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)
    if done.returncode != 0 or not (tmp_path / "resume.rc").exists():
        pytest.skip(f"no private mounts here: {done.stderr.strip()[:200]}")
    err = (tmp_path / "resume.err").read_text()
    assert (tmp_path / "resume.rc").read_text().strip() == "2", err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert " ".join(lines[0].split()) == (
        f"error: run {run.run_id}'s folder {run.path} is on a read-only file system: make it writable, or copy the "
        "run folder to a writable runs folder and use it there")
    assert sorted(p.name for p in run.path.iterdir()) == before  # nothing written, nothing lost


def test_delete_in_a_read_only_store_says_which_folder_and_why(tmp_path: Path) -> None:
    run = ended_run(tmp_path / "runs", "cancelled")
    script = (f"mount --bind runs runs && mount -o remount,ro,bind runs && {LF_TUI.rsplit('/', 1)[0]}/python -c "
              f"\"from engine.run_store import RunDir, RunRefused\ntry:\n    RunDir('runs/{run.run_id}').delete()\n"
              "except RunRefused as exc:\n    print(exc)\"")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    if "unshare:" in done.stderr or "mount:" in done.stderr:
        pytest.skip(f"no private mounts here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(f"run {run.run_id}'s folder ") and "read-only file system" in done.stdout
    assert "make the runs folder writable to delete it" in done.stdout and "Errno" not in done.stdout
    assert run.path.is_dir()  # nothing lost
