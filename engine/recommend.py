"""The selection matrix made live: every method and setting that fits a memory budget on a model, ranked for a goal
(light: the memory planner only, nothing loads)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.planning import PlanError, model_shape, setting_on
from methods.catalogue import Method, get_catalogue
from methods.memory_plan import Device, MemoryPlan, plan_memory
from methods.model_shape import ModelShape
from methods.validation import validate_config

Goal = Literal["quality", "speed", "memory"]
GOALS: tuple[Goal, ...] = ("quality", "speed", "memory")
BATCHES = (1, 2, 4, 8, 16)
RANKS = (8, 16, 64)
SPEED = {"very fast": 1.3, "fast": 1.0, "medium": 0.75, "slow": 0.5, "very slow": 0.35}
CHECKPOINTING_SPEED = 0.75  # recomputing the forward pass costs about a third more time
CHARS_PER_TOKEN = 4.0  # for a dataset's longest example when no tokenizer is read


@dataclass
class Candidate:
    """One method with settings that fit: its config document, estimate and scores."""

    method: str
    title: str
    settings: dict[str, Any]
    document: dict[str, Any]
    plan: MemoryPlan
    quality: float  # the method's quality against full fine-tuning (%), from its matrix row
    speed: float  # relative throughput (1.0: LoRA at batch 8 without checkpointing)
    notes: list[str] = field(default_factory=list)

    def settings_text(self) -> str:
        """`batch 8, r 16, gradient checkpointing` (checkpointing named only when on)."""
        parts = [f"{k} {v}" for k, v in self.settings.items() if k != "gradient checkpointing"]
        return ", ".join(parts + (["gradient checkpointing"] if self.settings.get("gradient checkpointing") == "on"
                                  else []))


def _quality(method: Method) -> float:
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", method.info.matrix.quality_vs_full)]
    return sum(numbers) / len(numbers) if numbers else 0.0


def _speed(method: Method, batch: int, checkpointing: bool) -> float:
    base = SPEED.get(method.info.matrix.training_speed.strip().lower(), 0.8)
    return round(base * (CHECKPOINTING_SPEED if checkpointing else 1.0) * min(1.0, (batch / 8) ** 0.25), 3)


def longest_example_tokens(dataset: str) -> int | None:
    """The longest example of a local JSON/JSONL dataset in tokens, estimated from its characters (None: unknown)."""
    path = Path(dataset).expanduser()
    if not path.is_file():
        return None

    def chars(value: Any) -> int:
        if isinstance(value, str):
            return len(value)
        if isinstance(value, dict):
            return sum(chars(v) for v in value.values())
        if isinstance(value, list):
            return sum(chars(v) for v in value)
        return 0

    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        records = json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()
                                                                   if line.strip()]
    except ValueError:
        return None
    if not isinstance(records, list) or not records:
        return None
    return int(max(chars(r) for r in records) / CHARS_PER_TOKEN) + 8  # + the template's tokens


def planned_seq_len(max_seq_length: int, dataset: str | None = None) -> tuple[int, str]:
    """The sequence length every plan assumes, and which it is: training.max_seq_length; with a local dataset its
    longest example (estimated from its characters) when that is shorter. Raises PlanError for an unreadable one."""
    if not dataset:
        return max_seq_length, "training.max_seq_length"
    longest = longest_example_tokens(dataset)
    if longest is None:
        raise PlanError(f"{dataset}: not a local JSON/JSONL dataset the planner can read",
                        "give a .json or .jsonl file, or leave the dataset out (plans at max_seq_length)")
    if longest >= max_seq_length:
        return max_seq_length, "training.max_seq_length (the dataset's longest example is as long)"
    return longest, "the dataset's longest example (estimated from its characters)"


def _variants(method: Method) -> list[dict[str, Any]]:
    """The method_specific settings worth trying: ranks for a method that has `r`, else its defaults."""
    fields = method.info.spec_model.model_fields
    if "r" in fields and "lora_alpha" in fields:
        return [{"r": r, "lora_alpha": 2 * r} for r in RANKS]
    return [{}]


def candidates(base_model: str, budget: int, device: Device = "cuda", dataset: str | None = None,
               max_seq_length: int = 512, smallest: bool = False) -> tuple[list[Candidate], ModelShape, list[str]]:
    """Every (method, checkpointing, rank) that fits `budget`, at its largest fitting batch (its smallest batch
    with `smallest`: the least memory); and notes on how the plan was made."""
    from methods.config_paths import resolve_cli_path

    base_model = resolve_cli_path(base_model) or base_model  # a folder: absolute in the configs it writes
    seq_len, seq_source = planned_seq_len(max_seq_length, dataset)
    shape, source = model_shape(base_model)
    notes = [f"model config: {source}"]
    if dataset:
        notes.append(f"sequence length {seq_len}: {seq_source}")
    found: list[Candidate] = []
    for method in get_catalogue():
        if method.info.memory is None:
            continue
        for specific in _variants(method):
            for checkpointing in (False, True):
                fitting = _fitting_batches(method, base_model, shape, specific, checkpointing, budget, device,
                                           seq_len)
                if fitting:
                    found.append(fitting[0] if smallest else fitting[-1])
    return found, shape, notes


def _fitting_batches(method: Method, base_model: str, shape: ModelShape, specific: dict[str, Any],
                     checkpointing: bool, budget: int, device: Device, seq_len: int) -> list[Candidate]:
    """The candidates of one setting at every batch that fits, smallest first (planned at `seq_len`; the config
    keeps the method's max_seq_length, which only truncates)."""
    fitting: list[Candidate] = []
    for batch in BATCHES:
        document = copy.deepcopy(method.defaults())
        inner = document["method_config"]
        inner["base_model"] = base_model
        inner["training"]["batch_size"] = batch
        inner["hardware"]["gradient_checkpointing"] = checkpointing
        inner["method_specific"].update(specific)
        resolved = validate_config(document)
        if resolved.config is None or method.info.memory is None:
            return fitting
        setting = setting_on(resolved.config, device, min(seq_len, resolved.config.training.max_seq_length))
        plan = plan_memory(shape, method.info.memory(shape, resolved.config), setting)
        if plan.total > budget:
            break
        settings = {"batch": batch, "gradient checkpointing": "on" if checkpointing else "off",
                    **{k: v for k, v in specific.items() if k != "lora_alpha"}}
        fitting.append(Candidate(method.name, method.info.title, settings, document, plan, _quality(method),
                                 _speed(method, batch, checkpointing), list(plan.notes)))
    return fitting


def rank(found: list[Candidate], goal: Goal) -> list[Candidate]:
    """Best first: quality (method quality, then rank, then speed), speed (relative throughput), memory (least)."""
    if goal == "memory":
        return sorted(found, key=lambda c: (c.plan.total, -c.quality))
    if goal == "speed":
        return sorted(found, key=lambda c: (-c.speed, -c.quality, c.plan.total))
    return sorted(found, key=lambda c: (-c.quality, -int(c.settings.get("r", 0)), -c.speed, c.plan.total))


def recommend(base_model: str, budget: int, goal: Goal = "quality", device: Device = "cuda",
              dataset: str | None = None) -> tuple[list[Candidate], list[str]]:
    """The fitting candidates ranked for `goal`, and notes; raises PlanError when the model cannot be sized."""
    found, _, notes = candidates(base_model, budget, device, dataset, smallest=goal == "memory")
    return rank(found, goal), notes


__all__ = ["GOALS", "Candidate", "Goal", "PlanError", "candidates", "rank", "recommend"]
