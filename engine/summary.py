"""The end-of-run report: totals, best eval, and a convergence verdict with the numbers behind it."""

from __future__ import annotations

import math
from typing import Any


def convergence_verdict(losses: list[float]) -> dict[str, Any]:
    """converged / still improving / plateaued / diverged / too short, from the training-loss curve."""
    finite = [x for x in losses if math.isfinite(x)]
    if len(finite) < len(losses):
        return {"verdict": "diverged", "reason": "loss became NaN or infinite"}
    n = len(finite)
    if n < 6:
        return {"verdict": "too short", "reason": f"only {n} logged steps"}
    window = max(2, n // 5)
    first = sum(finite[:window]) / window
    last = sum(finite[-window:]) / window
    before = sum(finite[-2 * window:-window]) / window
    total_change = (last - first) / abs(first) if first else 0.0
    recent_change = (last - before) / abs(before) if before else 0.0
    numbers = {"first_window_loss": round(first, 4), "last_window_loss": round(last, 4),
               "total_change_pct": round(100 * total_change, 2), "recent_change_pct": round(100 * recent_change, 2),
               "window_steps": window}
    if total_change > 0.25 or recent_change > 0.25:
        verdict = "diverged"
    elif recent_change < -0.02:
        verdict = "still improving"
    elif total_change < -0.05:
        verdict = "converged"
    else:
        verdict = "plateaued"
    return {"verdict": verdict, **numbers}


def build_summary(*, status: str, total_steps: int, losses: list[float], eval_losses: list[float],
                  training_time_s: float, peak_memory_mb: float, extra: dict[str, Any] | None = None,
                  diverged: str | None = None) -> dict[str, Any]:
    """The summary.json of a run; `diverged` (why the run diverged) overrides the curve's verdict."""
    best_eval = min(eval_losses) if eval_losses else None
    convergence = {"verdict": "diverged", "reason": diverged} if diverged else convergence_verdict(losses)
    return {
        "status": status,
        "total_steps": total_steps,
        "final_loss": losses[-1] if losses else None,
        "best_loss": min(losses) if losses else None,
        "best_eval_loss": best_eval,
        "best_perplexity": math.exp(min(best_eval, 50)) if best_eval is not None else None,
        "training_time_s": round(training_time_s, 3),
        "peak_memory_mb": round(peak_memory_mb, 1),
        "convergence": convergence,
        **(extra or {}),
    }
