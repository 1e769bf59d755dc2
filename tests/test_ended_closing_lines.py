"""The closing words of a run that ended badly, without a terminal or an engine: a crash is said once, every error
kind has a fix, the disk fix is the engine's own sentence."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from engine.errors import DISK_HINT, KINDS
from lf_tui.cli.live_view import _final
from lf_tui.present import ending
from lf_tui.run_state import RunState
from tests.ended_fixtures import ended_run


def test_a_crashed_run_says_it_crashed_once(tmp_path: Path) -> None:
    run = ended_run(tmp_path / "runs", "crashed")
    out = io.StringIO()
    assert _final(Console(file=out, width=200), RunState(), run) != 0
    text = out.getvalue()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == ending.CRASHED, text
    assert sum("crash" in line or "died" in line or "stopped without" in line for line in lines) == 1, text
    assert lines[-1] == f"resume it from its last checkpoint: lf-tui train --resume {run.run_id}", text


def test_every_error_kind_has_a_fix_and_the_disk_fix_is_the_engine_s() -> None:
    assert ending.KIND_HINTS["disk"] == DISK_HINT
    assert set(KINDS) <= set(ending.KIND_HINTS), set(KINDS) - set(ending.KIND_HINTS)
    assert all(hint.strip() for hint in ending.KIND_HINTS.values())
