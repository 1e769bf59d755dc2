"""The words both front ends show: the run header, the event lines and the summary rows."""

from __future__ import annotations

from engine.protocol import Checkpoint, Control, Eval, Log, RunStarted, System
from lf_tui.present import run_text


def test_header_is_short_and_says_what_runs_where() -> None:
    st = RunStarted(run_id="r", method="lora", base_model="builtin:tiny-llama", device="cpu", precision="fp32",
                    trainable_params=28_672, total_params=947_328, train_examples=205, eval_examples=23,
                    total_steps=156, config_hash="abc", startup={"imports_s": 4.0})
    assert run_text.header(st) == ("lora on builtin:tiny-llama · cpu fp32 · trainable 28.7K/947.3K params · "
                                   "205 train / 23 eval examples · 156 steps")
    assert run_text.header(RunStarted(method="lora", base_model="x")) == "lora on x"  # failed during setup
    assert run_text.header(RunStarted(method="m", base_model="b", device="cuda:0", resumed_from_step=40)) \
        .endswith("resumed from step 40")


def test_summary_rows_say_which_weights_and_why_a_run_stopped() -> None:
    rows = dict(run_text.summary_rows({
        "status": "completed", "total_steps": 40, "final_loss": 1.23456, "best_eval_loss": 1.5, "best_perplexity": 4.48,
        "weights_from": "best_eval", "weights_step": 30, "training_time_s": 75, "peak_memory_mb": 443.6,
        "convergence": {"verdict": "converged", "total_change_pct": -40.0, "recent_change_pct": -1.0},
        "stopped_early": True}))
    assert rows["weights"] == "best eval (step 30)" and rows["training time"] == "1:15"
    assert rows["final loss"] == "1.235" and rows["peak memory"] == "444 MB" and "stopped early" in rows
    assert rows["convergence"] == "converged (-40.0% overall, -1.0% recently)"
    failed = dict(run_text.summary_rows({"status": "failed", "diverged_at_step": 18, "final_loss": None,
                                         "convergence": {"verdict": "diverged", "reason": "loss became NaN"}}))
    assert failed["diverged at step"] == "18" and failed["weights"] == "—" and failed["final loss"] == "—"
    assert failed["convergence"] == "diverged (loss became NaN)"


def test_plain_event_lines_read_like_the_run_view() -> None:
    line = run_text.event_line(Eval(step=30, eval_loss=5.879293532598586, perplexity=357.5123,
                                    tasks={"sample_mc": {"acc": 0.25, "acc_norm": 0.3, "count": 40}}))
    assert line == "step 30  eval loss 5.8793  perplexity 357.51  sample_mc acc 0.250 (40)"
    assert run_text.event_line(Eval(step=4, eval_loss=1.0, perplexity=2.718)) == \
        "step 4  eval loss 1.0000  perplexity 2.72"
    assert run_text.event_line(Log(level="info", message="loading the model")) == "  info loading the model"
    assert run_text.event_line(Checkpoint(step=8, path="checkpoints/step-8")) == \
        "checkpoint at step 8: checkpoints/step-8"
    assert run_text.event_line(Control(request="a1", action="stop_after_eval", status="armed", step=12,
                                       detail="stops after the next evaluation")) == \
        "control stop after eval: armed at step 12 (stops after the next evaluation)"
    assert run_text.event_line(System()) is None


def test_the_planned_peak_says_what_it_assumes() -> None:
    from engine.protocol import RunStarted
    from lf_tui.present.run_text import planned_line

    assert planned_line(RunStarted(device="cpu")) is None  # no estimate: nothing said
    cpu = planned_line(RunStarted(device="cpu", precision="bf16", planned_peak_bytes=84 * 2**20))
    assert cpu == "planned peak 84 MB (cpu bf16 at max_seq_length; training only)"
    gpu = planned_line(RunStarted(device="cuda:1", precision="fp16", planned_peak_bytes=673 * 2**20))
    assert gpu == "planned peak 673 MB (cuda fp16 at max_seq_length; incl. CUDA runtime)"


def test_the_run_view_and_the_planner_word_what_a_peak_counts_alike() -> None:
    """One helper, keyed by the device, words the scope for the run view's planned peak and the planner's figures."""
    from engine.protocol import RunStarted
    from lf_tui.present import memory_text
    from lf_tui.present.run_text import planned_line
    from methods.memory_plan import MemoryPlan, Setting

    for device in ("cpu", "cuda", "cuda:1"):
        words = memory_text.scope_short(device)
        line = planned_line(RunStarted(device=device, precision="fp32", planned_peak_bytes=2**20))
        plan = MemoryPlan(parts={"weights": 2**20}, setting=Setting(device.split(":")[0], "fp32", 1, 8, False,  # type: ignore[arg-type]
                                                                    "adamw"), params=1, trainable_params=1,
                          uncertainty=0.1)
        assert line is not None and line.endswith(f"; {words})") and memory_text.covers_short(plan) == words
    assert memory_text.scope_short("cpu") == "training only" and memory_text.scope_short("cuda:0") == "incl. CUDA runtime"
