"""The words both front ends show for a run (header, error), computed once; Rich and Textual only lay them out."""

from __future__ import annotations

from typing import Any

from engine.protocol import Error, RunStarted
from lf_tui.formatting import count, duration, number


def header(st: RunStarted) -> str:
    """The run's opening line: method, model, device, precision, params, examples, steps."""
    if not st.device:  # the engine failed before it knew more (the stream opened at its failure)
        return f"{st.method} on {st.base_model}"
    text = (f"{st.method} on {st.base_model} · {st.device} {st.precision} · trainable "
            f"{count(st.trainable_params)}/{count(st.total_params)} params · {st.train_examples} train / "
            f"{st.eval_examples} eval examples · {st.total_steps} steps")
    if st.resumed_from_step:
        text += f" · resumed from step {st.resumed_from_step}"
    return text


def error_lines(error: Error) -> list[str]:
    """What went wrong and what to do about it (the traceback stays in engine.log)."""
    lines = [f"{error.kind} error: {error.message}"]
    if error.hint:
        lines.append(f"hint: {error.hint}")
    return lines


def _weights(summary: dict[str, Any]) -> str:
    source, step = summary.get("weights_from"), summary.get("weights_step")
    if source is None:
        return "—" if summary.get("status") != "completed" else "final"
    where = f" (step {step})" if step is not None else ""
    return ("best eval" if source == "best_eval" else "final") + where


def _convergence(summary: dict[str, Any]) -> str:
    conv = summary.get("convergence") or {}
    verdict = conv.get("verdict", "—")
    if "total_change_pct" in conv:
        return f"{verdict} ({conv['total_change_pct']}% overall, {conv.get('recent_change_pct', '—')}% recently)"
    return f"{verdict}" + (f" ({conv['reason']})" if conv.get("reason") else "")


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The end-of-run figures as (label, value) rows: the CLI's table, the run view and the comparison."""
    rows = [("status", str(summary.get("status", "—"))),
            ("total steps", str(summary.get("total_steps", "—"))),
            ("final loss", number(summary.get("final_loss"))),
            ("best eval loss", number(summary.get("best_eval_loss"))),
            ("best perplexity", number(summary.get("best_perplexity"))),
            ("weights", _weights(summary)),
            ("training time", duration(summary.get("training_time_s"))),
            ("peak memory", f"{summary.get('peak_memory_mb') or 0:.0f} MB"),
            ("convergence", _convergence(summary))]
    if summary.get("stopped_early"):
        rows.append(("stopped early", "yes: no better eval loss within the patience"))
    if summary.get("diverged_at_step") is not None:
        rows.append(("diverged at step", str(summary["diverged_at_step"])))
    return rows
