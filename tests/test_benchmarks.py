"""The benchmark harness runs end to end at a toy size, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

KEYS = {"engine_vs_trainer_nopack", "engine_vs_trainer", "engine_vs_trainer_grouped", "engine_vs_bare", "mfu_engine",
        "ui_events_per_s", "ui_peak_rss_mb", "validate_config_vs_python", "first_step_s"}


def test_harness_at_toy_size() -> None:
    proc = subprocess.run([sys.executable, "benchmarks/run.py", "--hidden", "64", "--layers", "1", "--steps", "3",
                           "--repeats", "1", "--seq", "128", "--ui-events", "3000"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert all(result[k] > 0 for k in KEYS)
    assert result["torch_imported_by_validate"] is False and result["torch_imported_by_tui"] is False
    assert set(result["first_step_split_s"]) == {"interpreter_s", "imports_s", "model_s", "data_s"}
