"""The memory plan as both front ends show it: sizes, the breakdown rows, and the fits / does-not-fit verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lf_tui.present.formatting import count
from methods.memory_plan import MemoryPlan

if TYPE_CHECKING:
    from engine.recommend import Candidate


def size(n_bytes: float) -> str:
    """Bytes as people read memory: `18.4 GiB`, `512 MiB`, `3.0 KiB`."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") or abs(value) >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # unreachable


def breakdown_rows(plan: MemoryPlan) -> list[tuple[str, str, str]]:
    """(part, size, share of the total) for every non-empty part, then the total with its range."""
    total = plan.total or 1
    rows = [(part, size(n), f"{100 * n / total:.0f}%") for part, n in plan.parts.items() if n]
    rows.append(("total (estimated peak)", size(plan.total), f"{size(plan.low)} – {size(plan.high)}"))
    return rows


def setting_line(plan: MemoryPlan) -> str:
    s = plan.setting
    checkpointing = "gradient checkpointing" if s.gradient_checkpointing else "no gradient checkpointing"
    return (f"{s.device} {s.precision}, batch {s.batch_size} x {s.seq_len} tokens, {checkpointing}, {s.optimizer}; "
            f"{count(plan.params)} parameters, {count(plan.trainable_params)} trainable")


def budget_text(budget: int, device: str) -> str:
    """`23.5 GiB RAM` (a CPU run's budget) or `24.0 GiB GPU`: which memory a budget is."""
    return f"{size(budget)} {'RAM' if device == 'cpu' else 'GPU'}"


def verdict(plan: MemoryPlan, budget: int | None, where: str = "") -> str:
    """`fits in 24.0 GiB GPU (GPU 0) with 5.6 GiB to spare` or `does not fit ...: short by 3.1 GiB; try ...`."""
    if budget is None:
        return "no memory budget: give --gpu-memory (e.g. 24GiB) or run on a machine with an NVIDIA GPU"
    place = f"{budget_text(budget, plan.setting.device)}{f' ({where})' if where else ''}"
    margin = plan.margin(budget)
    if margin >= 0:
        tight = " (tight: within the estimate's uncertainty)" if plan.high > budget else ""
        return f"fits in {place} with {size(margin)} to spare{tight}"
    return f"does not fit in {place}: short by {size(-margin)}; {advice(plan)}"


def editor_line(plan: MemoryPlan, budget: int, where: str) -> str:
    """The editor's estimate in two short lines (its side panel is 30 columns at 80x24):
    `memory ~17.5 GiB (cuda bf16)` and `fits 24.0 GiB GPU: 6.5 GiB spare (GPU 0: ...)`, or on a CPU
    `fits 23.5 GiB RAM: 23.4 GiB spare` (or `short by`); `where` names a GPU budget's source."""
    head = f"memory ~{size(plan.total)} ({plan.setting.device} {plan.setting.precision})"
    margin = plan.margin(budget)
    place = budget_text(budget, plan.setting.device)
    verdict = f"fits {place}: {size(margin)} spare" if margin >= 0 else f"does not fit {place}: short by {size(-margin)}"
    return f"{head}\n{verdict}" + ("" if plan.setting.device == "cpu" else f" ({where})")


def advice(plan: MemoryPlan) -> str:
    """What would shrink the largest part."""
    largest = max(plan.parts, key=lambda part: plan.parts[part])
    s = plan.setting
    activations = ("lower training.batch_size or max_seq_length" if s.gradient_checkpointing else
                   "set hardware.gradient_checkpointing, or lower training.batch_size or max_seq_length")
    quantised = "quantisation constants" in plan.parts
    tips = {
        "activations": activations,
        "weights": "use a smaller model" if quantised else "use qlora (4-bit base weights) or a smaller model",
        "optimizer states": "train fewer parameters (lora, qlora) or use optimizer sgd/adafactor",
        "gradients": "train fewer parameters (lora or qlora instead of full fine-tuning)",
        "logits and loss": "lower training.batch_size or max_seq_length",
    }
    return f"the largest part is {largest}: {tips.get(largest, 'lower training.batch_size')}"




RECOMMEND_HEADERS = ["#", "Method", "Settings", "Est. memory", "Rel. speed", "Quality vs full"]


def recommend_rows(found: list[Candidate]) -> list[tuple[str, ...]]:
    """One row per candidate, best first: rank, method, settings, estimated peak, relative speed, quality."""
    return [(str(i), c.title, c.settings_text(), size(c.plan.total), f"{c.speed:.2f}x", f"{c.quality:.1f}%")
            for i, c in enumerate(found, start=1)]
