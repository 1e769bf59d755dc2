"""The CLI on runs that ended (through the installed `lf-tui`, on runs made from the fixture, no training): the
error and what next in `runs --json` and `attach`, RUN arguments, a second Ctrl-C, and a closed stdout pipe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engine.protocol import Event
from engine.run_store import INTERRUPTED
from lf_tui.cli.live_view import watch
from tests.ended_fixtures import DATA_ERROR, FIXTURE, ended_run

LF_TUI = str(Path(sys.executable).with_name("lf-tui"))


def _lf_tui(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LF_TUI, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "LF_TUI_RUNS_DIR": ""})


def test_runs_json_attach_and_run_arguments_say_why_and_what_next(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    failed = ended_run(root, "failed", name="20260101-184554-lora-c371")
    ended_run(root, "cancelled", steps=30)
    listed = {r["status"]: r for r in json.loads(_lf_tui("runs", "--json", cwd=tmp_path).stdout)}
    assert listed["failed"]["error"] == DATA_ERROR
    assert listed["failed"]["next_steps"][-1].endswith(f"lf-tui train --resume {failed.run_id}")
    assert listed["cancelled"]["error"] is None and listed["cancelled"]["next_steps"] == [
        f"resume it from its last checkpoint: lf-tui train --resume {listed['cancelled']['run_id']}"]

    attached = _lf_tui("attach", "184554-c371", "--plain", cwd=tmp_path)  # the short name the app shows
    lines = attached.stdout.splitlines()
    assert attached.returncode == 1, attached.stdout + attached.stderr
    assert lines[0] == f"replaying {failed.run_id} (failed): it is not running"  # not "the run goes on"
    assert lines[-3:] == [f"data error: {DATA_ERROR['message']}", f"  hint: {DATA_ERROR['hint']}",
                          f"  after the fix, resume it from its last checkpoint: lf-tui train --resume {failed.run_id}"]

    (tmp_path / "etc").mkdir()
    for command in ("report", "attach"):
        refused = _lf_tui(command, str(tmp_path / "etc"), cwd=tmp_path)
        assert refused.returncode == 2 and refused.stdout == ""
        assert " ".join(refused.stderr.split()) == (f"error: {tmp_path / 'etc'} is a folder but not a run folder (it "
                                                    "has no meta.json or events.jsonl): give a run id or a run's "
                                                    "folder (see `lf-tui runs`)")
    missing = _lf_tui("runs", "--runs-dir", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and " ".join(missing.stderr.split()) == (
        f"error: the runs folder {tmp_path / 'nowhere'} (from --runs-dir) does not exist: check the path")


WATCH_A_REPLAY = """
import sys
from engine.event_follow import follow_events
from engine.run_store import RunDir
from lf_tui.cli.live_view import watch
sys.exit(watch(follow_events(RunDir(sys.argv[1]), follow=False), plain=True, on_interrupt=None))
"""


def test_a_closed_stdout_does_not_fail_a_completed_run() -> None:
    """`lf-tui train | head -3`: the reader goes away; the run's own ending decides the exit status (0)."""
    proc = subprocess.Popen([sys.executable, "-c", WATCH_A_REPLAY, str(FIXTURE)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(200)
    proc.stdout.close()  # like `head`: a few lines, then gone
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""  # no BrokenPipe traceback


def _interrupted_twice(run_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    """watch() as `lf-tui train` calls it, on a stream that stays open, with Ctrl-C pressed twice."""
    from engine.run_store import RunDir

    release, asked = threading.Event(), []

    def silent() -> Iterator[Event]:  # a stream that stays open until the test ends
        release.wait(30)
        yield from ()

    def press() -> None:
        for _ in range(2):
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press, daemon=True).start()
    try:
        rc = watch(silent(), plain=True,
                   on_interrupt=lambda: asked.append("cancel"), interrupt_text="cancelling", run=RunDir(run_path))
    finally:
        release.set()
    return rc, capsys.readouterr().out, asked


def test_a_second_ctrl_c_says_what_really_happens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cancelling = ended_run(tmp_path, "crashed", name="20260101-120000-lora-live")
    me = psutil.Process()
    (cancelling.path / "engine.json").write_text(json.dumps({"pid": me.pid, "create_time": me.create_time(),
                                                             "started": time.time()}))  # its engine is alive
    rc, out, asked = _interrupted_twice(cancelling.path, capsys)
    assert asked == ["cancel"] and rc == INTERRUPTED
    assert out.splitlines()[-1] == ("stopped watching; the run is still cancelling: it saves a checkpoint, then ends "
                                    f"cancelled (`lf-tui attach {cancelling.run_id}` follows it)")
    assert "the run goes on" not in out
    cancelled = ended_run(tmp_path, "cancelled")
    rc, out, _ = _interrupted_twice(cancelled.path, capsys)
    assert rc == INTERRUPTED and out.splitlines()[-1] == "stopped watching; the run has ended: cancelled"
