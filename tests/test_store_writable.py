"""The run store that cannot be written: one sentence naming the folder, the cause and the fix, before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.run_store import MIN_FREE_BYTES, RunStore, unwritable_reason


def _namespaced(script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a private mount namespace (root in a user namespace: no privileges needed)."""
    try:
        done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if "unshare:" in done.stderr or "mount:" in done.stderr:
        pytest.skip(f"no private mounts here: {done.stderr.strip()[:200]}")
    return done


def test_a_writable_folder_is_made_and_left_clean(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "runs"
    assert unwritable_reason(folder) is None
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert RunStore(folder).writable_refusal() is None


def test_a_store_under_a_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    reason = unwritable_reason(tmp_path / "afile" / "runs")
    assert reason is not None and "\n" not in reason
    assert f"{tmp_path / 'afile'} is a file, not a folder" in reason
    assert "--runs-dir" in reason and "LF_TUI_RUNS_DIR" in reason
    reason = RunStore(tmp_path / "afile").writable_refusal()
    assert reason is not None and f"{tmp_path / 'afile'} is not a folder" in reason


def test_a_read_only_mount_and_a_full_disk_are_named(tmp_path: Path) -> None:
    ro, small = tmp_path / "ro", tmp_path / "small"
    ro.mkdir()
    small.mkdir()
    script = (f"mount --bind {ro} {ro} && mount -o remount,ro,bind {ro} && mount -t tmpfs -o size=4m tmpfs {small} "
              "&& exec python -c 'import sys; from pathlib import Path; from engine.run_store import unwritable_reason "
              "as u; print(u(Path(sys.argv[1]))); print(u(Path(sys.argv[2])))' "
              f"{ro / 'runs'} {small}")
    done = _namespaced(script.replace("exec python", f"exec {sys.executable}"))
    assert done.returncode == 0, done.stderr
    read_only, full = done.stdout.splitlines()
    assert read_only == (f"the runs folder {ro / 'runs'} is on a read-only file system: give a writable folder with "
                         "--runs-dir DIR or $LF_TUI_RUNS_DIR")
    assert full.startswith(f"the runs folder {small} has only 4 MiB free (a run needs at least "
                           f"{MIN_FREE_BYTES // 2**20} MiB): free some space, or give a writable folder"), full


CREATE = """
import sys
from pathlib import Path
from engine.run_store import RunStore, StoreWriteError
for root in sys.argv[1:]:
    try:
        RunStore(root).create("lora", {"base_model": "builtin:tiny-llama"})
        print("created")
    except StoreWriteError as exc:
        print(type(exc).__name__, exc, sorted(p.name for p in Path(root).iterdir()))
"""


def test_create_says_which_folder_when_a_write_fails_anyway(tmp_path: Path) -> None:
    """The disk fills (or the folder turns read-only) between the check and the write: a clear error, no half run."""
    ro, full = tmp_path / "ro", tmp_path / "full"
    ro.mkdir()
    full.mkdir()
    (tmp_path / "create.py").write_text(CREATE)
    script = (f"mount --bind {ro} {ro} && mount -o remount,ro,bind {ro} && mount -t tmpfs -o size=1m tmpfs {full} "
              f"&& (head -c 2M /dev/zero > {full}/filler; true) "
              f"&& exec {sys.executable} {tmp_path / 'create.py'} {ro} {full}")
    done = _namespaced(script)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    read_only, no_space = done.stdout.splitlines()
    assert read_only == (f"StoreWriteError the runs folder {ro} is on a read-only file system: give a writable folder "
                         "with --runs-dir DIR or $LF_TUI_RUNS_DIR []")
    assert no_space == (f"StoreWriteError the runs folder {full} has no space left: free some space, or give a "
                        "writable folder with --runs-dir DIR or $LF_TUI_RUNS_DIR ['filler']")


LF_TUI = str(Path(sys.executable).with_name("lf-tui"))


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return " ".join(lines[0].split())


def test_the_cli_refuses_an_unwritable_store_before_any_work(tmp_path: Path) -> None:
    """As a user runs it: the installed command, an empty working folder, relative paths."""
    (tmp_path / "afile").write_text("x")
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    done = subprocess.run([LF_TUI, "quick-train", "-m", "lora", "--runs-dir", "afile/runs"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert _one_error_line(done) == (f"error: the runs folder {tmp_path / 'afile' / 'runs'} cannot be made "
                                     f"({tmp_path / 'afile'} is a file, not a folder): give a writable folder with "
                                     "--runs-dir DIR or $LF_TUI_RUNS_DIR")
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "cfg.json").write_text('{"method": "lora", "training": {"max_steps": 2}}')
    script = (f"mount --bind ro ro && mount -o remount,ro,bind ro && {LF_TUI} train -c cfg.json --detach "
              f"--runs-dir ro/runs 2>train.err; echo $? > train.rc; LF_TUI_RUNS_DIR=ro {LF_TUI} quick-train -m lora "
              "--detach 2>quick.err; echo $? > quick.rc")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)
    if done.returncode != 0 or not (tmp_path / "quick.rc").exists():
        pytest.skip(f"no private mounts here: {done.stderr.strip()[:200]}")
    for name, folder in (("train", ro / "runs"), ("quick", ro)):
        rc, err = (tmp_path / f"{name}.rc").read_text().strip(), (tmp_path / f"{name}.err").read_text()
        line = _one_error_line(subprocess.CompletedProcess([], int(rc), "", err))
        assert rc == "2" and line == (f"error: the runs folder {folder} is on a read-only file system: give a "
                                      "writable folder with --runs-dir DIR or $LF_TUI_RUNS_DIR"), (name, err)
    assert list(ro.iterdir()) == []


def test_a_run_folder_that_cannot_take_a_resume_says_so(tmp_path: Path) -> None:
    from engine.run_store import RunDir

    run = RunStore(tmp_path / "runs").create("lora", {"base_model": "builtin:tiny-llama"})
    assert run.writable_refusal() is None
    (tmp_path / "runs" / "gone").write_text("a file where a run folder was")
    reason = RunDir(tmp_path / "runs" / "gone").writable_refusal()
    assert reason == (f"run gone's folder {tmp_path / 'runs' / 'gone'} is not a folder: make it writable, or copy the "
                      "run folder to a writable runs folder and use it there")
