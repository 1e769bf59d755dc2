"""Metadata a method folder declares: its selection-matrix row and use-case recommendations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from methods.config_models import MethodSpecific

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
class MethodInfo:
    """Everything the catalogue knows about a method without importing torch."""

    name: str
    title: str
    summary: str
    order: int
    matrix: MatrixRow
    spec_model: type[MethodSpecific]
    lr_range: tuple[float, float]
    use_cases: tuple[UseCase, ...] = field(default_factory=tuple)
    demo_learning_rate: float | None = None  # quick-train on the built-in tiny model
