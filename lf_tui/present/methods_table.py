"""The quick selection matrix and the use-case recommendations as both front ends show them (one wording)."""

from __future__ import annotations

import json
from collections.abc import Callable

from methods.catalogue import Method, get_catalogue
from methods.method_info import MatrixRow, Variant

YES_NO = {True: "✔ yes", False: "✘ no"}
READINESS = {"yes": "✔ yes", "partial": "◐ partial", "no": "✘ no"}

CRITERIA: list[tuple[str, Callable[[MatrixRow], str]]] = [
    ("GPU Memory (7B)", lambda r: r.gpu_memory_7b),
    ("Training Speed", lambda r: r.training_speed),
    ("Quality vs Full FT", lambda r: r.quality_vs_full),
    ("Multiple Tasks", lambda r: YES_NO[r.multiple_tasks]),
    ("Hot Swapping", lambda r: YES_NO[r.hot_swapping]),
    ("Production Ready", lambda r: READINESS[r.production_ready]),
]
MATRIX_HEADERS = ["Method", *(label for label, _ in CRITERIA)]
USE_CASE_HEADERS = ["Use Case", "Primary Method", "Secondary Option", "Configuration Notes"]
VARIANT_HEADERS = ["Method", "Variant", "Set in method_specific", "What it changes"]


def matrix_cells(method: Method) -> list[str]:
    """One method's row of the matrix: its title, then one cell per criterion."""
    return [method.info.title, *(get(method.info.matrix) for _, get in CRITERIA)]


def matrix_rows() -> list[tuple[str, list[str]]]:
    """(method name, cells) for every method in the catalogue, in catalogue order."""
    return [(m.name, matrix_cells(m)) for m in get_catalogue()]


def use_case_rows() -> list[tuple[str, str, str, str]]:
    return get_catalogue().use_case_table()


def variant_options(variant: Variant) -> str:
    """The options that switch a variant on, as a user writes them: `use_dora: true, use_rslora: true`."""
    return ", ".join(f"{key}: {json.dumps(value)}" for key, value in variant.options.items())


def variant_rows() -> list[tuple[str, str, str, str]]:
    """(method, variant, options, summary) for every variant a method's spec declares, in catalogue order."""
    return [(m.info.title, v.title, variant_options(v), v.summary) for m in get_catalogue() for v in m.info.variants]


def method_blurb(method: Method) -> tuple[str, str]:
    """A method's title and the lines under it: summary, usual learning-rate range and its variants."""
    lo, hi = method.info.lr_range
    text = f"{method.info.summary}\nusual learning rate {lo:g}–{hi:g}"
    if method.info.variants:
        text += "\nvariants: " + "; ".join(f"{v.title} ({variant_options(v)})" for v in method.info.variants)
    return method.info.title, text
