"""The launcher's early engine.json is best effort: a disk that refuses it must not hide an engine already running."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest

from engine import launcher
from engine.run_store import RunStore


def test_a_full_disk_at_engine_json_still_returns_the_running_engine(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunStore(tmp_path / "runs").create("lora", {"base_model": "builtin:tiny-llama"})

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(launcher, "write_json", full)
    process = launcher._start(run, lambda fd: [sys.executable, "-c", "pass"], events_pipe=True, stdin_pipe=False)
    try:
        assert process.wait(timeout=30) == 0  # the caller got the process: it can follow and stop it
        assert process.pid == process.popen.pid
    finally:
        process.detach()
