"""The words both front ends show for a run (title, header, step line, error, summary), computed once."""

from __future__ import annotations

from typing import Any

from engine.launcher import SegmentOpened
from engine.protocol import Checkpoint, Control, Eval, Event, Log, RunStarted, Step
from lf_tui.present.formatting import count, disk_size, duration, number, rate, seconds
from lf_tui.present.memory_text import scope_short


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


def planned_line(st: RunStarted | None) -> str | None:
    """The memory planner's peak for the run, to read beside the measured memory; None without an estimate."""
    if st is None or not st.planned_peak_bytes:
        return None
    device = st.device.split(":")[0] or "?"
    return (f"planned peak {st.planned_peak_bytes / 2 ** 20:,.0f} MB ({device} {st.precision} at max_seq_length; "
            f"{scope_short(st.device)})")


def title(run_id: str, status: str, started: RunStarted | None, trust_remote_code: bool = False) -> str:
    """The run view's title line: id, status word, and the header once the engine has said it."""
    text = f"Run {run_id} · {status}"
    if started is not None:
        text += " · " + header(started)
        if trust_remote_code:
            text += " · ⚠ trust_remote_code ON"
    return text


def step_fields(s: Step, ended: bool = False) -> list[tuple[str, str]]:
    """A step's figures as (label, value): step, epoch, loss, lr, tokens/s, elapsed, ETA (none once the run has
    ended: nothing is left to wait for)."""
    eta = [] if ended else [("ETA", duration(s.eta_s))]
    return [("step", f"{s.step}/{s.total_steps}"), ("epoch", f"{s.epoch:.2f}"), ("loss", f"{s.loss:.4f}"),
            ("lr", f"{s.learning_rate:.3g}"), ("tokens/s", f"{s.tokens_per_s:,.0f}"),
            ("elapsed", duration(s.elapsed_s)), *eta,
            *((metric_label(name), figure(value)) for name, value in s.method_metrics.items())]


def metric_label(name: str) -> str:
    """A method figure's name as shown: `rank_budget` -> `rank budget`."""
    return name.replace("_", " ")


def figure(value: Any) -> str:
    """A method figure: whole numbers without decimals, others to 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def metric_history(points: list[list[float]]) -> str:
    """A method figure over the run, from its [[step, value], ...] change points: `96 (step 1) → 64 (step 5) →
    32 (step 9)`; more than four changes show the first two and the last."""
    shown = [f"{figure(v)} (step {int(step)})" for step, v in points]
    if len(shown) > 4:
        shown = [*shown[:2], f"… {len(shown) - 3} more …", shown[-1]]
    return " → ".join(shown) if shown else "—"


def method_lines(history: dict[str, list[list[float]]]) -> list[str]:
    """The method's figures over the run so far (AdaLoRA's rank budget), one line each."""
    return [f"{metric_label(name)}: {metric_history(points)}" for name, points in history.items() if points]


def step_line(s: Step, lines: int = 1, ended: bool = False) -> str:
    """The step's figures on one line, or split over `lines` lines for a narrow panel (no ETA once `ended`)."""
    parts = [f"{label} {value}" for label, value in step_fields(s, ended)]
    per_line = -(-len(parts) // max(1, lines))
    return "\n".join("  ".join(parts[i:i + per_line]) for i in range(0, len(parts), per_line))


def eval_line(e: Eval) -> str:
    tasks = "".join(f"  {name} acc {r.get('acc', 0):.3f} ({r.get('count', '?')})" for name, r in e.tasks.items()
                    if isinstance(r, dict))
    return f"eval loss {e.eval_loss:.4f}  perplexity {e.perplexity:.2f}{tasks}"


def event_line(event: Event) -> str | None:
    """One plain line per event for a log-style view (`--plain`, a pipe); None for events it does not print."""
    if isinstance(event, RunStarted):
        return header(event)
    if isinstance(event, Step):
        return step_line(event)
    if isinstance(event, SegmentOpened):
        return "a new engine is resuming this run (loading the model and data)"
    if isinstance(event, Eval):
        return f"step {event.step}  {eval_line(event)}"
    if isinstance(event, Log):
        return f"  {event.level} {event.message}"
    if isinstance(event, Checkpoint):
        return f"checkpoint at step {event.step}: {event.path}"
    if isinstance(event, Control):
        return control_line(event)
    return None


def control_line(c: Control) -> str:
    """The engine's answer to a live control request: `control stop after eval: armed at step 12 (detail)`."""
    return (f"control {c.action.replace('_', ' ')}: {c.status} at step {c.step}"
            + (f" ({c.detail})" if c.detail else ""))


def _weights(summary: dict[str, Any]) -> str:
    source, step = summary.get("weights_from"), summary.get("weights_step")
    if source is None:
        return "—" if summary.get("status") != "completed" else "final"
    if source == "fused":
        return "fused (not trained)"
    where = f" (step {step})" if step is not None else ""
    return ("best eval" if source == "best_eval" else "final") + where


def _convergence(summary: dict[str, Any]) -> str:
    conv = summary.get("convergence") or {}
    verdict = conv.get("verdict", "—")
    if "total_change_pct" in conv:
        return f"{verdict} ({conv['total_change_pct']}% overall, {conv.get('recent_change_pct', '—')}% recently)"
    return f"{verdict}" + (f" ({conv['reason']})" if conv.get("reason") else "")


def _peak(summary: dict[str, Any]) -> str:
    """The measured peak, and the planner's estimate beside it when the run had one."""
    peak = summary.get("peak_memory_mb") or 0
    shown = f"{peak:.0f} MB"
    planned = summary.get("planned_peak_mb")
    if not isinstance(planned, (int, float)) or not planned:
        return shown
    runtime = summary.get("runtime_memory_mb")
    if isinstance(runtime, (int, float)) and runtime:  # CPU: the process's RSS, of which the runtime is a part
        return (f"{shown} ({runtime:.0f} MB runtime + {max(0.0, peak - runtime):.0f} MB training; planned "
                f"{planned:.0f} MB for training)")
    return f"{shown} (planned {planned:.0f} MB)"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def deployment_fields(figures: dict[str, Any] | None) -> dict[str, str]:
    """A run's deployment figures (summary.json's "deployment") as shown everywhere: the runs table's cells, the
    run view's summary and the comparison. — for a figure that was not measured."""
    d = figures if isinstance(figures, dict) else {}
    merged = disk_size(_number(d.get("merged_bytes")))
    if d.get("merged_bytes") is not None and d.get("merged_dtype"):
        merged += f" ({d['merged_dtype']})"
    elif d.get("merged_note"):
        merged = str(d["merged_note"])
    where = str(d["device"]) if d.get("device") else "—"
    if d.get("not_measured"):
        where = f"not measured: {d['not_measured']}" if where == "—" else f"{where}; not measured: {d['not_measured']}"
    return {"adapter size": disk_size(_number(d.get("adapter_bytes"))), "merged size": merged,
            "first token": seconds(_number(d.get("first_token_s"))), "tokens/s": rate(_number(d.get("tokens_per_s"))),
            "measured on": where}


def derived_line(summary: dict[str, Any]) -> str | None:
    """A fused run's recipe: `0.6 x RUN_A + 0.4 x RUN_B (linear, rank 16)`; None for a trained run."""
    parents = summary.get("derived_from")
    if not isinstance(parents, list) or not parents:
        return None
    found = summary.get("fusion")
    recipe: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = recipe.get("weights")
    weights: list[Any] = listed if isinstance(listed, list) else []
    terms = [f"{figure(weights[i])} x {p}" if i < len(weights) else str(p) for i, p in enumerate(parents)]
    how = [str(recipe.get("combination", "?"))]
    if recipe.get("density") is not None:
        how.append(f"density {figure(recipe['density'])}")
    if recipe.get("rank") is not None:
        how.append(f"rank {recipe['rank']}")
    return " + ".join(terms) + f" ({', '.join(how)})"


def summary_title(summary: dict[str, Any]) -> str:
    """The summary's heading: how the run ended."""
    return f"Run {summary.get('status', '—')}"


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The end-of-run figures as (label, value) rows: the CLI's table, the run view and the comparison."""
    rows = [("status", str(summary.get("status", "—"))),
            ("total steps", str(summary.get("total_steps", "—"))),
            ("final loss", number(summary.get("final_loss"))),
            ("best eval loss", number(summary.get("best_eval_loss"))),
            ("best perplexity", number(summary.get("best_perplexity"))),
            ("weights", _weights(summary)),
            ("training time", duration(summary.get("training_time_s"))),
            ("peak memory", _peak(summary)),
            ("convergence", _convergence(summary))]
    if isinstance(summary.get("deployment"), dict):  # a run from before the figures existed has none: no rows
        rows += list(deployment_fields(summary["deployment"]).items())
    derived = derived_line(summary)
    if derived is not None:
        rows.insert(1, ("fused from", derived))
    if summary.get("stopped_early"):
        rows.append(("stopped early", f"yes: {summary.get('stop_reason') or 'no better eval loss within the patience'}"))
    if summary.get("diverged_at_step") is not None:
        rows.append(("diverged at step", str(summary["diverged_at_step"])))
    for name, points in (summary.get("method_metrics") or {}).items():
        if isinstance(points, list):
            rows.append((metric_label(name), metric_history(points)))
    for name, value in (summary.get("method") or {}).items():
        if isinstance(value, (int, float, str)):
            rows.append((metric_label(name), figure(value)))
    return rows


def compared_labels(summaries: list[dict[str, Any]]) -> list[str]:
    """The comparison's row labels: every run's summary rows (a fused run's recipe, a method's own figures), in the
    order they first appear, each once."""
    labels = [label for label, _ in summary_rows({})]
    for summary in summaries:
        for label, _ in summary_rows(summary):
            if label not in labels:
                labels.append(label)
    return labels
