"""Metadata a method folder declares: its selection-matrix row and use-case recommendations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from methods.config_models import MethodConfigBase, MethodSpecific
from methods.memory_plan import Footprint
from methods.model_shape import ModelShape

Readiness = Literal["yes", "partial", "no"]


@dataclass(frozen=True)
class MatrixRow:
    """One column of the quick selection matrix (the design shows methods as columns)."""

    gpu_memory_7b: str
    training_speed: str
    quality_vs_full: str
    multiple_tasks: bool
    hot_swapping: bool
    production_ready: Readiness


@dataclass(frozen=True)
class UseCase:
    """A use case this method is recommended for, as the primary or the secondary option."""

    use_case: str
    role: Literal["primary", "secondary"]
    notes: str = ""


@dataclass(frozen=True)
class Finding:
    """A finding of a method's own validation rule: a warning (or an error) at a config path."""

    path: str
    message: str
    value: Any = None
    hint: str = ""
    severity: Literal["warning", "error"] = "warning"


Rule = Callable[[MethodConfigBase], Iterable[Finding]]  # a method's validation rule, run on a config that validated
# What a method trains and changes on a model of this shape under this config (for the memory planner)
MemoryModel = Callable[[ModelShape, MethodConfigBase], Footprint]


@dataclass(frozen=True)
class Demo:
    """Settings under which the method visibly learns on the built-in tiny model in 15 steps (the engine tests use
    them for every method in the catalogue)."""

    learning_rate: float
    method_specific: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Variant:
    """A named variant of a method, switched on by its method_specific options (DoRA is LoRA with use_dora)."""

    title: str
    options: dict[str, Any] = field(hash=False)
    summary: str


@dataclass(frozen=True)
class MethodInfo:
    """Everything the catalogue knows about a method without importing torch."""

    name: str  # the catalogue replaces it with the folder's name: a copied folder is a method of its own
    title: str
    summary: str
    order: int
    matrix: MatrixRow
    spec_model: type[MethodSpecific]
    lr_range: tuple[float, float]
    use_cases: tuple[UseCase, ...] = field(default_factory=tuple)
    demo_learning_rate: float | None = None  # quick-train on the built-in tiny model
    rules: tuple[Rule, ...] = ()  # the method's own validation rules (the shared ones live in methods.validation)
    demo: Demo | None = None  # how the catalogue-wide engine tests train it
    variants: tuple[Variant, ...] = ()  # shown with the method in `lf-tui methods` and the methods screen
    memory: MemoryModel | None = None  # its footprint for the memory planner (None: the planner cannot estimate it)
