"""`lf-tui report RUN`: a real run checked against its config's benchmarks block, as the README shows it (the
installed command, default ./runs, from the folder holding it), with a downstream task evaluated by `lf-tui eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.benchmark_report import report, verdict
from engine.run_store import RunDir
from lf_tui.present.report_text import headline, rows

LF_TUI = Path(sys.executable).with_name("lf-tui")
BENCHMARKS = {
    "training_efficiency": {"max_training_time": "1h", "memory_budget": "1MiB", "convergence_threshold": 0.5},
    "quality_metrics": {"perplexity_threshold": 1e9, "downstream_tasks": ["sample"], "minimum_accuracy": 0.0},
    "resource_metrics": {"min_gpu_utilization": 0.8, "max_inference_latency": "30s"},
}


def lf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([str(LF_TUI), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_a_run_is_checked_threshold_by_threshold(tmp_path: Path) -> None:
    doc = json.loads((Path(__file__).parents[1] / "methods" / "lora" / "defaults.json").read_text())
    mc = doc["method_config"]
    mc["training"].update(max_steps=8, max_seq_length=64)
    mc["monitoring"].update(eval_steps=4, save_steps=0)
    mc["benchmarks"] = BENCHMARKS
    (tmp_path / "bench.json").write_text(json.dumps(doc))
    trained = lf("train", "-m", "lora", "-c", "bench.json", "--plain", cwd=tmp_path)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    assert "step 4  eval loss " in trained.stdout and "eval_loss=" not in trained.stdout  # plain: the eval line
    (run_path,) = [p for p in (tmp_path / "runs").iterdir() if (p / "config.json").is_file()]
    run = RunDir(run_path)

    before = report(run)
    sample = next(c for c in before["checks"] if c["name"] == "sample")
    assert sample["verdict"] == "not measured" and f"lf-tui eval {run.run_id} --tasks sample" in sample["why"]

    evaluated = lf("eval", run.run_id, "--tasks", "sample", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stdout[-2000:] + evaluated.stderr[-2000:]
    limited = lf("eval", run.run_id, "--tasks", "sample", "--limit", "5", cwd=tmp_path)  # never replaces the full one
    assert limited.returncode == 0 and (run.path / "eval" / "sample_mc@limit5.json").is_file()
    out = lf("report", run.run_id, "--json", cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr  # the 1 MiB memory budget fails
    result = json.loads(out.stdout)
    checks = {c["name"]: c for c in result["checks"]}
    summary = run.summary() or {}
    assert result["verdict"] == "fail"
    assert checks["max_training_time"]["verdict"] == "pass"
    assert checks["max_training_time"]["value"] == summary["training_time_s"]
    assert checks["memory_budget"]["verdict"] == "fail"
    assert checks["memory_budget"]["value"] == summary["peak_memory_mb"] * 2 ** 20
    assert checks["perplexity_threshold"]["value"] == summary["best_perplexity"]
    conv = summary["convergence"]
    if "recent_change_pct" in conv:
        assert checks["convergence_threshold"]["value"] == abs(conv["recent_change_pct"]) / 100
    eval_doc = json.loads((run.path / "eval" / "sample_mc.json").read_text())
    assert checks["sample"]["value"] == eval_doc["models"]["trained"]["acc"] and eval_doc["limit"] is None
    assert eval_doc["models"]["trained"]["count"] > 5 and f"{eval_doc['models']['trained']['count']} questions" in \
        checks["sample"]["why"]
    assert checks["sample"]["verdict"] == "pass" and "questions" in checks["sample"]["why"]
    gpu = checks["min_gpu_utilization"]
    assert gpu["verdict"] == "not measured" and "no GPU" in gpu["why"]  # a CPU run
    latency = checks["max_inference_latency"]
    assert latency["verdict"] == "pass" and latency["value"] == summary["deployment"]["first_token_s"]
    # the Runs screen's and `lf-tui runs`' bench column
    from engine.run_store import RunStore
    from lf_tui.present.runs_table import cells

    (info,) = RunStore(tmp_path / "runs").list()
    assert cells(info)["bench"] == "✗ fail"
    # the table the CLI prints says the same
    table = lf("report", run.run_id, cwd=tmp_path)
    assert "fail" in table.stdout and "memory_budget" in table.stdout and "not measured" in table.stdout

    # a generous budget: nothing fails; the GPU utilisation stays unmeasured on CPU, so the verdict is incomplete
    cfg = run.config() or {}
    cfg["benchmarks"]["training_efficiency"]["memory_budget"] = "64GiB"
    (run.path / "config.json").write_text(json.dumps(cfg))
    assert report(run)["verdict"] == "incomplete" and verdict(run) == "incomplete"
    assert cells(info)["bench"] == "… part"
    assert "0 failed" in headline(report(run)) and len(rows(report(run))) == len(result["checks"])
    assert lf("report", run.run_id, cwd=tmp_path).returncode == 0


def test_a_run_without_thresholds_says_how_to_add_them(tmp_path: Path) -> None:
    run_path = tmp_path / "runs" / "r1"
    run_path.mkdir(parents=True)
    (run_path / "config.json").write_text(json.dumps({"method_name": "lora"}))
    result = report(RunDir(run_path))
    assert result == {"run_id": "r1", "verdict": "no thresholds", "checks": [], "problems": []}
    assert "add a benchmarks block" in headline(result)


def test_typos_are_problems_and_a_limited_evaluation_is_never_judged(tmp_path: Path) -> None:
    from engine.evaluate import save

    run = RunDir(tmp_path / "runs" / "r1")
    run.path.mkdir(parents=True)
    (run.path / "config.json").write_text(json.dumps({"method_name": "lora", "benchmarks": {
        "quality_metric": {"perplexity_threshold": 5},
        "quality_metrics": {"downstream_tasks": ["sample"], "minimum_accuracy": 0.5, "minimum_acuracy": 0.9}}}))
    (run.path / "meta.json").write_text(json.dumps({"run_id": "r1", "method": "lora"}))  # a run folder for the CLI

    def entry(count: int, correct: int, limit: int | None) -> dict[str, object]:
        return {"task": "sample_mc", "source": "s", "limit": limit, "limited": limit is not None, "weights": "weights",
                "models": {"trained": {"acc": correct / count, "count": count}}}

    save(run, entry(5, 1, 5))
    result = report(run)
    (check,) = result["checks"]
    assert check["verdict"] == "not measured" and check["value"] is None
    assert check["why"] == "only a limited evaluation (5 questions) exists; run lf-tui eval r1 --tasks sample"
    assert result["problems"] == [
        "benchmarks.quality_metric: unknown key (did you mean quality_metrics?)",
        "benchmarks.quality_metrics.minimum_acuracy: unknown key (did you mean minimum_accuracy?)"]
    save(run, entry(40, 30, None))
    save(run, entry(5, 1, 5))  # a later limited evaluation leaves the full one in place
    assert sorted(p.name for p in (run.path / "eval").iterdir()) == ["sample_mc.json", "sample_mc@limit5.json"]
    (check,) = report(run)["checks"]
    assert check["verdict"] == "pass" and check["value"] == 0.75 and "40 questions" in check["why"]
    shown = lf("report", "r1", cwd=tmp_path)
    assert shown.returncode == 0 and "problem: benchmarks.quality_metric: unknown key (did you mean " \
        "quality_metrics?)" in " ".join(shown.stdout.split())
    assert json.loads(lf("report", "r1", "--json", cwd=tmp_path).stdout)["problems"] == result["problems"]


def test_only_the_final_weights_results_are_judged(tmp_path: Path) -> None:
    """A full evaluation of a checkpoint (an unfinished run's latest weights) passes no threshold: the report says
    that only a checkpoint was scored, and how to score the final weights; once they are scored, they are judged."""
    from engine.evaluate import save

    run = RunDir(tmp_path / "runs" / "r1")
    run.path.mkdir(parents=True)
    (run.path / "config.json").write_text(json.dumps({"method_name": "lora", "benchmarks": {
        "quality_metrics": {"downstream_tasks": ["sample"], "minimum_accuracy": 0.5}}}))

    def entry(weights: str | None, acc: float) -> dict[str, object]:
        doc: dict[str, object] = {"task": "sample_mc", "source": "s", "limit": None, "limited": False,
                                  "models": {"trained": {"acc": acc, "count": 32}}}
        return doc if weights is None else {**doc, "weights": weights}

    save(run, entry("checkpoints/step-00000010/weights", 0.9))
    (check,) = report(run)["checks"]
    assert check["verdict"] == "not measured" and check["value"] is None
    assert check["why"] == ("only checkpoints/step-00000010/weights was scored (a checkpoint, not the run's final "
                            "weights); once the run has its final weights, run lf-tui eval r1 --tasks sample")
    run.weights_dir.mkdir()
    assert "; run lf-tui eval r1 --tasks sample" in report(run)["checks"][0]["why"]
    save(run, entry(None, 0.9))  # a result that does not say which weights it scored is not judged either
    assert "does not say which weights" in report(run)["checks"][0]["why"]
    save(run, entry("weights", 0.25))
    (check,) = report(run)["checks"]
    assert check["verdict"] == "fail" and check["value"] == 0.25 and "the final weights" in check["why"]


async def test_the_comparison_shows_each_runs_checks_side_by_side(tmp_path: Path) -> None:
    import shutil

    from textual.widgets import DataTable

    from lf_tui.app import LfTuiApp
    from lf_tui.present.report_text import compared
    from lf_tui.screens.compare_screen import CompareScreen
    from tests.test_snapshots import FIXTURE_RUNS
    from tests.tui_helpers import wait_for

    shutil.copytree(FIXTURE_RUNS, tmp_path / "runs")
    lora, full = sorted((tmp_path / "runs").iterdir())
    cfg = json.loads((lora / "config.json").read_text())
    cfg["benchmarks"] = {"training_efficiency": {"max_training_time": "10s"},
                         "quality_metrics": {"perplexity_threshold": 1000}}
    (lora / "config.json").write_text(json.dumps(cfg))
    rows_ = compared([report(RunDir(lora)), report(RunDir(full))])
    assert rows_[0] == ("verdict", "fail", "no thresholds")
    assert rows_[1][0] == "training · max_training_time" and rows_[1][1].startswith("23.0 s ✗ (≤ 10s)")
    assert rows_[1][2] == "—" and rows_[2][1] == "134 ✓ (≤ 1000)"
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(CompareScreen([RunDir(lora), RunDir(full)]))
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and any(t.row_count == 3 for t in app.screen.query("#compare-bench").results(DataTable)),
                       what="benchmarks table")
        table = app.screen.query_one("#compare-bench", DataTable)
        assert [str(c) for c in table.get_row_at(0)] == list(rows_[0])
