"""The run view's model without a terminal: bounded curves, log tail, status; runs-table sorting and filtering."""

from __future__ import annotations

from pathlib import Path

from engine.protocol import Error, Eval, Finished, Log, RunStarted, Step, System
from engine.run_store import RunInfo
from lf_tui.curve import Curve
from lf_tui.present.config_diff import config_differences
from lf_tui.present.runs_table import matches, row, sort_runs
from lf_tui.run_state import RunState


def test_curve_stays_bounded_and_spans_the_whole_run() -> None:
    curve = Curve(max_points=100)
    for i in range(1_000_000):
        curve.append(i, 1000.0 / (i + 1))
    xs, ys = curve.points()
    assert len(xs) <= 101 and curve.count == 1_000_000
    assert xs[0] < 10_000 and xs[-1] > 990_000  # evenly spread from start to end
    assert ys == sorted(ys, reverse=True)  # averaging keeps the shape
    assert curve.last_y == 1000.0 / 1_000_000 and curve.min_y == curve.last_y


def test_run_model_ingests_every_event_kind() -> None:
    m = RunState()
    m.ingest(RunStarted(run_id="r", total_steps=10, nvml="NVML unavailable (x): reporting CPU and RAM only"))
    for step in range(1, 4):
        m.ingest(Step(step=step, loss=3.0 - step, learning_rate=1e-3, total_steps=10))
    m.ingest(Eval(step=3, eval_loss=1.5, perplexity=4.48))
    m.ingest(System(cpu_percent=150, rss_mb=512, ram_used_mb=4096, ram_total_mb=8192))
    m.ingest(Log(level="warning", message="careful"))
    assert m.status == "running" and abs(m.progress - 0.3) < 1e-9 and len(m.loss) == 3
    assert m.memory_lines()[0].startswith("CPU 150%")
    assert [level for level, _ in m.new_logs(0)] == ["info", "warning"]
    m.ingest(System(gpus=[{"index": 0, "memory_used_mb": 2048, "memory_total_mb": 81920, "utilization": 97}]))
    assert "GPU0 2.0/80.0 GiB  util 97%" == m.memory_lines()[0]
    m.ingest(Error(kind="oom", message="out of memory", hint="smaller batch"))
    assert m.status == "failed" and "smaller batch" in m.new_logs(2)[-1][1]
    m.ingest(Finished(status="failed", summary={"total_steps": 3}))
    assert m.summary() == {"total_steps": 3}


def _info(run_id: str, **kw) -> RunInfo:
    return RunInfo(run_id, Path(run_id), **kw)


def test_runs_sort_and_filter() -> None:
    runs = [_info("a", method="lora", status="completed", final_loss=1.0, started=3),
            _info("b", method="qlora", status="running", final_loss=None, started=2),
            _info("c", method="lora", status="failed", final_loss=0.5, started=1)]
    assert [r.run_id for r in sort_runs(runs, "final_loss", False)] == ["c", "a", "b"]  # unknown values last
    assert [r.run_id for r in sort_runs(runs, "started", True)] == ["a", "b", "c"]
    assert [r.run_id for r in runs if matches(r, "lora comp")] == ["a"]
    assert row(runs[1])[3] == "running" and row(runs[1])[5] == "—"


def test_config_differences_only_lists_keys_that_differ() -> None:
    a = {"training": {"learning_rate": 1e-3, "epochs": 3}, "method_specific": {"r": 8}}
    b = {"training": {"learning_rate": 5e-3, "epochs": 3}, "method_specific": {"r": 8, "bias": "all"}}
    assert config_differences([a, b]) == [("method_specific.bias", ["—", "all"]),
                                          ("training.learning_rate", [1e-3, 5e-3])]
