"""`lf-tui eval` and the engine's evaluate refuse a run whose scores cannot be saved with one sentence, built once
(RunDir.eval_refusal), before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.run_store import RunStore

LF_TUI = Path(sys.executable).with_name("lf-tui")


def test_the_cli_and_the_engine_refuse_an_unsavable_eval_in_the_same_words(tmp_path: Path) -> None:
    from engine.evaluate import evaluate

    run = RunStore(tmp_path / "runs").create("lora", {"base_model": "builtin:tiny-llama"})
    assert run.eval_refusal() is None
    (run.path / "eval").write_text("a file where the eval folder goes")
    refusal = run.eval_refusal()
    assert refusal is not None and refusal.startswith("nothing was scored: the scores are saved in the run's folder")
    assert str(run.path / "eval") in refusal and "copy the run folder" in refusal
    with pytest.raises(EngineError) as caught:
        evaluate(run.path, ["sample"])
    assert (caught.value.kind, caught.value.message) == ("store", refusal)
    proc = subprocess.run([str(LF_TUI), "eval", run.run_id, "--tasks", "sample"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**{k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}, "COLUMNS": "400"})
    assert proc.returncode == 2 and " ".join(proc.stderr.split()) == f"error: {refusal}", proc.stderr
