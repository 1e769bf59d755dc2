"""Snapshot tests that see the screens: every stop of the screen tour, at the screenshot size and at 80x24.

The steps are those of scripts/make_screenshots.py (tests/screen_tour.py); the runs are the committed fixture runs
(scripts/record_snapshot_runs.py), so every machine draws the same pixels. After a deliberate change of layout:
    .venv/bin/python -m pytest tests/test_snapshots.py --snapshot-update
then look at the SVGs in tests/__snapshots__/test_snapshots/ before committing them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lf_tui.app import LfTuiApp
from tests.screen_tour import SCREENSHOT_SIZE, SMALL_SIZE, TOUR, Stop, reach_and_settle

FIXTURE_RUNS = Path(__file__).parent / "fixtures" / "snapshot_runs"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work in tmp_path (the runs list shows the store relative to it: "runs"), on UTC (it shows local times)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("LF_TUI_GPU_MEMORY", "24GiB")  # the editor's memory estimate, the same on every machine
    time.tzset()
    yield tmp_path
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("size", [SCREENSHOT_SIZE, SMALL_SIZE], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("stop", TOUR, ids=lambda s: s.name)
def test_screen(stop: Stop, size: tuple[int, int], in_tmp: Path, snap_compare) -> None:
    runs = in_tmp / "runs"
    if stop.with_runs:
        shutil.copytree(FIXTURE_RUNS, runs)
    else:
        runs.mkdir()
    assert snap_compare(LfTuiApp(runs_dir="runs"), terminal_size=size, run_before=reach_and_settle(stop))
