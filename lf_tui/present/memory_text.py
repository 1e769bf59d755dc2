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


def assumes(plan: MemoryPlan) -> str:
    """What a figure is for, shortest form: `cuda bf16, batch 4 x 512 tokens`."""
    s = plan.setting
    return f"{s.device} {s.precision}, batch {s.batch_size} x {s.seq_len} tokens"


def covers(plan: MemoryPlan) -> str:
    """What a figure counts: on a GPU the CUDA runtime is in it, on a CPU it is not (the process's own memory)."""
    if plan.setting.device == "cpu":
        return "training only; the runtime (torch, the process itself) is not included"
    return "training on the GPU, the CUDA runtime included (its context and the allocator's slack)"


def scope_short(device: str) -> str:
    """What a planned peak on `device` (`cpu`, `cuda:0`) counts, in a few words: the CUDA runtime is in a GPU's."""
    return "training only" if device.split(":")[0] == "cpu" else "incl. CUDA runtime"


def covers_short(plan: MemoryPlan) -> str:
    return scope_short(plan.setting.device)


def figure(plan: MemoryPlan) -> str:
    """A planned peak that says what it assumes: `27.6 GiB (cuda bf16, batch 4 x 512 tokens; incl. CUDA runtime)`."""
    return f"{size(plan.total)} ({assumes(plan)}; {covers_short(plan)})"


def setting_line(plan: MemoryPlan, why: str = "") -> str:
    """`cuda (hardware.device in the config) bf16, batch 4 x 512 tokens, ...; 6.7B parameters, 8.4M trainable`:
    every setting the plan assumes (`why`: why this device)."""
    s = plan.setting
    checkpointing = "gradient checkpointing" if s.gradient_checkpointing else "no gradient checkpointing"
    device = f"{s.device} ({why})" if why else s.device
    return (f"{device} {s.precision}, batch {s.batch_size} x {s.seq_len} tokens, {checkpointing}, {s.optimizer}; "
            f"{count(plan.params)} parameters, {count(plan.trainable_params)} trainable")


NO_BUDGET = "no GPU memory budget is known (no --gpu-memory, no $LF_TUI_GPU_MEMORY, no GPU visible here)"


def budget_text(budget: int, device: str) -> str:
    """`23.5 GiB RAM` (a CPU run's budget) or `24.0 GiB GPU`: which memory a budget is."""
    return f"{size(budget)} {'RAM' if device == 'cpu' else 'GPU'}"


def verdict(plan: MemoryPlan, budget: int | None, where: str = "") -> str:
    """`fits in 24.0 GiB GPU (GPU 0) with 5.6 GiB to spare` or `does not fit ...: short by 3.1 GiB; try ...`."""
    if budget is None:
        return f"fits: unknown: {NO_BUDGET}; give --gpu-memory (e.g. 24GiB) or set $LF_TUI_GPU_MEMORY"
    place = f"{budget_text(budget, plan.setting.device)}{f' ({where})' if where else ''}"
    margin = plan.margin(budget)
    if margin >= 0:
        tight = " (tight: within the estimate's uncertainty)" if plan.high > budget else ""
        return f"fits in {place} with {size(margin)} to spare{tight}"
    return f"does not fit in {place}: short by {size(-margin)}; {advice(plan)}"


def editor_line(plan: MemoryPlan, budget: int | None, where: str) -> str:
    """The editor's estimate in three short lines (its side panel is 30 columns at 80x24):
    `memory ~17.5 GiB (cuda bf16)`, what it assumes and counts (`batch 4 x 512; incl. CUDA runtime`) and
    `fits 24.0 GiB GPU: 6.5 GiB spare (GPU 0: ...)`, or on a CPU `fits 23.5 GiB RAM: 23.4 GiB spare` (or `short
    by`); with no GPU budget known `fits: unknown (set $LF_TUI_GPU_MEMORY)`; `where` names a GPU budget's source."""
    s = plan.setting
    head = f"memory ~{size(plan.total)} ({s.device} {s.precision})\nbatch {s.batch_size} x {s.seq_len}; {covers_short(plan)}"
    if budget is None:
        return f"{head}\nfits: unknown (set $LF_TUI_GPU_MEMORY)"
    margin = plan.margin(budget)
    place = budget_text(budget, s.device)
    verdict = f"fits {place}: {size(margin)} spare" if margin >= 0 else f"does not fit {place}: short by {size(-margin)}"
    return f"{head}\n{verdict}" + ("" if s.device == "cpu" or not where else f" ({where})")


def matrix_caption(model_label: str) -> str:
    """What the methods matrix's memory row assumes (the CLI's caption and the screen's): each method's defaults on
    `model_label` planned for a GPU, the CUDA runtime included, so it reads apart from the editor's figure for your
    config on your device."""
    import copy

    from methods.catalogue import get_catalogue
    from methods.memory_plan import ALLOCATOR_SLACK, CUDA_CONTEXT, setting_for
    from methods.validation import validate_config

    shared: dict[str, list[str]] = {}
    for method in get_catalogue():
        cfg = validate_config(copy.deepcopy(method.defaults())).config
        if cfg is None:
            continue
        s = setting_for(cfg, "cuda")
        checkpointing = ", gradient checkpointing" if s.gradient_checkpointing else ""
        shared.setdefault(f"{s.precision}, batch {s.batch_size} x {s.seq_len} tokens{checkpointing}", []).append(
            method.name)
    common = max(shared, key=lambda k: len(shared[k])) if shared else ""
    others = "; ".join(f"{', '.join(names)}: {k}" for k, names in shared.items() if k != common)
    return (f"memory: the planner's peak for each method's defaults on {model_label} on a GPU (cuda {common}"
            + (f"; {others}" if others else "") + f"), the CUDA runtime included (a {size(CUDA_CONTEXT)} context and "
            f"{100 * ALLOCATOR_SLACK:.0f}% allocator slack); lf-tui plan and the editor plan your config on your device")


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


def recommend_count_line(shown: int, total: int, goal: str) -> str:
    """Under `lf-tui recommend`'s table: `10 of 22 shown; 12 more fit, ranked lower for quality: --top 22 or --all
    shows every one` (or `all 22 shown`), in the What fits screen's words (present.recommend_text.shown_line)."""
    from lf_tui.present.recommend_text import shown_line

    line = shown_line(shown, total)
    if shown >= total:
        return line
    return (f"{line}; {total - shown} more fit, ranked lower for {goal}: --top {total} or --all shows every one")


def recommend_assumes(plan: MemoryPlan) -> str:
    """What the Est. memory column assumes: `Est. memory: cuda bf16, each row's batch x 512 tokens; training on the
    GPU, the CUDA runtime included (...)`."""
    s = plan.setting
    return f"Est. memory: {s.device} {s.precision}, each row's batch x {s.seq_len} tokens; {covers(plan)}"
