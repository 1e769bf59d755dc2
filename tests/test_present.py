"""The presentation layer both front ends use: step line, gauges, runs rows, matrix wording, paths."""

from __future__ import annotations

from pathlib import Path

from engine.protocol import Eval, Step, System
from engine.run_store import RunInfo
from lf_tui.present import run_text
from lf_tui.present.formatting import shown_path
from lf_tui.present.gauges import gauges
from lf_tui.present.methods_table import MATRIX_HEADERS, matrix_rows
from lf_tui.present.runs_table import COMPACT_KEYS, SORT_KEYS, row


def test_step_line_one_wording_on_one_or_two_lines() -> None:
    s = Step(step=3, total_steps=10, epoch=0.3, loss=1.23456, learning_rate=2e-4, tokens_per_s=12345.6,
             elapsed_s=75, eta_s=3700)
    one = run_text.step_line(s)
    assert one == "step 3/10  epoch 0.30  loss 1.2346  lr 0.0002  tokens/s 12,346  elapsed 1:15  ETA 1:01:40"
    two = run_text.step_line(s, lines=2)
    assert two.replace("\n", "  ") == one and two.count("\n") == 1
    assert run_text.eval_line(Eval(step=3, eval_loss=1.5, perplexity=4.4817)) == "eval loss 1.5000  perplexity 4.48"


def test_title_says_status_and_warns_about_remote_code() -> None:
    assert run_text.title("r1", "crashed", None) == "Run r1 · crashed"
    from engine.protocol import RunStarted

    st = RunStarted(method="lora", base_model="m")
    assert run_text.title("r1", "running", st, trust_remote_code=True) == "Run r1 · running · lora on m · ⚠ trust_remote_code ON"


def test_gauges_per_gpu_or_cpu_and_ram() -> None:
    gpu = gauges(System(gpus=[{"index": 1, "memory_used_mb": 40960, "memory_total_mb": 81920, "utilization": 250}]))
    assert [(g.label, round(g.fraction, 2), g.text) for g in gpu] == [
        ("GPU1 mem", 0.5, "40.0/80.0 GiB"), ("GPU1 util", 1.0, "250%")]  # a bad reading never overfills the bar
    cpu = gauges(System(cpu_percent=50, rss_mb=512, ram_used_mb=6144, ram_total_mb=24576))
    assert [g.label for g in cpu] == ["CPU", "RAM"] and cpu[1].fraction == 0.25 and "engine RSS 0.50 GiB" in cpu[1].text
    assert gauges(None) == [] and gauges(System(ram_total_mb=0))[1].fraction == 0.0


def test_runs_row_compact_columns_keep_id_and_status() -> None:
    info = RunInfo("20260101-lora-ab12", Path("x"), method="lora", base_model="m", status="completed", steps=4,
                   total_steps=4, final_loss=1.5)
    assert row(info, COMPACT_KEYS) == ("20260101-lora-ab12", "lora", "completed", "4/4", "1.5", "—")
    assert len(row(info)) == 13 and row(info)[SORT_KEYS.index("bench")] == "—"  # no benchmarks block


def test_matrix_has_one_wording_for_both_front_ends() -> None:
    rows = dict(matrix_rows())
    assert MATRIX_HEADERS[0] == "Method" and len(rows["lora"]) == len(MATRIX_HEADERS)
    assert rows["full_finetune"][MATRIX_HEADERS.index("Hot Swapping")] == "✘ no"
    assert rows["prefix_tuning"][MATRIX_HEADERS.index("Production Ready")] == "◐ partial"


def test_shown_path_is_relative_inside_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "runs") == "runs" and shown_path("runs") == "runs"
    assert shown_path("/elsewhere/runs") == "/elsewhere/runs" and shown_path(tmp_path) == "."


def test_one_compact_rule_for_both_runs_tables() -> None:
    from lf_tui.present.runs_table import COMPACT_KEYS, SORT_KEYS, columns_for

    assert columns_for(80)[0] == COMPACT_KEYS and columns_for(80)[1]["final_loss"] == "loss"
    assert columns_for(200)[0] == SORT_KEYS and columns_for(200)[1]["final_loss"] == "final loss"
    assert "derived_from" in columns_for(160)[0] and "best_loss" not in columns_for(160)[0]
    assert "bench" in columns_for(160)[0] and "bench" not in columns_for(80)[0]


def test_a_viewer_note_makes_views_redraw() -> None:
    from lf_tui.run_state import RunState

    state = RunState()
    before = state.version
    state.note("error", "cannot read events: boom")
    assert state.version == before + 1 and state.new_logs(0) == [("error", "cannot read events: boom")]


def test_one_line_memory_view_is_built_from_the_gauges() -> None:
    from lf_tui.present.gauges import memory_lines

    assert memory_lines(System(cpu_percent=50, rss_mb=512, ram_used_mb=6144, ram_total_mb=24576)) == [
        "CPU 50%  RAM 6.0/24.0 GiB (engine RSS 0.50 GiB)"]
    gpus = [{"index": 0, "memory_used_mb": 1024, "memory_total_mb": 2048, "utilization": None},
            {"index": 1, "memory_used_mb": 0, "memory_total_mb": 2048, "utilization": 5}]
    assert memory_lines(System(gpus=gpus)) == ["GPU0 1.0/2.0 GiB  util 0%", "GPU1 0.0/2.0 GiB  util 5%"]
