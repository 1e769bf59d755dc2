"""The quick selection matrix and the use-case recommendations as both front ends show them (one wording)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

from methods.catalogue import METHODS_DIR, Method, get_catalogue
from methods.method_info import MatrixRow, Variant
from methods.model_shape import ModelShape

# the memory column is computed for this model (its published config.json, no weights) unless one is chosen
REFERENCE_MODEL = str(METHODS_DIR / "reference_models" / "llama-2-7b")
REFERENCE_LABEL = "Llama-2-7B"

YES_NO = {True: "✔ yes", False: "✘ no"}
READINESS = {"yes": "✔ yes", "partial": "◐ partial", "no": "✘ no"}

MEMORY_HEADER = "GPU Memory"
CRITERIA: list[tuple[str, Callable[[MatrixRow], str]]] = [
    ("Training Speed", lambda r: r.training_speed),
    ("Quality vs Full FT", lambda r: r.quality_vs_full),
    ("Multiple Tasks", lambda r: YES_NO[r.multiple_tasks]),
    ("Hot Swapping", lambda r: YES_NO[r.hot_swapping]),
    ("Production Ready", lambda r: READINESS[r.production_ready]),
]


def matrix_headers(model_label: str = REFERENCE_LABEL) -> list[str]:
    return ["Method", f"{MEMORY_HEADER} ({model_label})", *(label for label, _ in CRITERIA)]


MATRIX_HEADERS = matrix_headers()
USE_CASE_HEADERS = ["Use Case", "Primary Method", "Secondary Option", "Configuration Notes"]
VARIANT_HEADERS = ["Method", "Variant", "Set in method_specific", "What it changes"]


def memory_cell(method: Method, base_model: str, known: tuple[ModelShape, str] | None = None) -> str:
    """The planner's peak for the method's defaults on `base_model` on a GPU (its spec's figure, marked `*`, when
    the planner cannot size it); `known`: the model's (shape, source), read once for every method."""
    from engine.planning import PlanError, estimate
    from lf_tui.present.memory_text import size
    from methods.validation import validate_config

    document = copy.deepcopy(method.defaults())
    document["method_config"]["base_model"] = base_model
    cfg = validate_config(document).config
    try:
        if cfg is None:
            raise PlanError("the defaults do not validate")
        return size(estimate(cfg, "cuda", known=known)[0].total)
    except PlanError:
        return f"{method.info.matrix.gpu_memory_7b}*"


def matrix_cells(method: Method, base_model: str = REFERENCE_MODEL,
                 known: tuple[ModelShape, str] | None = None) -> list[str]:
    """One method's row of the matrix: its title, its planned memory on `base_model`, one cell per criterion."""
    return [method.info.title, memory_cell(method, base_model, known),
            *(get(method.info.matrix) for _, get in CRITERIA)]


def matrix_rows(base_model: str = REFERENCE_MODEL,
                known: tuple[ModelShape, str] | None = None) -> list[tuple[str, list[str]]]:
    """(method name, cells) for every method in the catalogue, in catalogue order; the model's config.json is read
    once (or `known` is its (shape, source) already)."""
    from engine.planning import PlanError, model_shape

    if known is None:
        try:
            known = model_shape(base_model)
        except PlanError:
            known = None  # each cell falls back to its spec's figure
    return [(m.name, matrix_cells(m, base_model, known)) for m in get_catalogue()]


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
