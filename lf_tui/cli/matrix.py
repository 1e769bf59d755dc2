"""`lf-tui methods`: the quick selection matrix and the use-case recommendations (the same words as the app)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from methods.model_shape import ModelShape


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("methods", help="the method selection matrix and recommendations")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.add_argument("--base-model", help="compute the memory row for this model (default: Llama-2-7B's sizes)")
    p.set_defaults(handler=run)


def matrix_table(base_model: str | None = None, known: tuple[ModelShape, str] | None = None) -> Table:
    """Criteria down the side, one column per method, as the design document lays it out."""
    from pathlib import Path

    from rich.table import Table

    from lf_tui.present.memory_text import matrix_caption
    from lf_tui.present.methods_table import REFERENCE_LABEL, REFERENCE_MODEL, matrix_headers, matrix_rows

    rows = matrix_rows(base_model or REFERENCE_MODEL, known)
    model_label = Path(base_model).name if base_model and Path(base_model).exists() else base_model
    table = Table(title="Quick selection matrix",
                  caption=f"{matrix_caption(model_label or REFERENCE_LABEL)}; * the design document's figure (the "
                          "method declares no memory model)")
    table.add_column("Criteria", style="bold")
    for _, cells in rows:
        table.add_column(cells[0])
    for i, label in enumerate(matrix_headers(model_label or REFERENCE_LABEL)[1:], start=1):
        table.add_row(label, *[cells[i] for _, cells in rows])
    return table


def use_case_table() -> Table:
    from rich.table import Table

    from lf_tui.present.methods_table import USE_CASE_HEADERS, use_case_rows

    table = Table(title="Use case recommendations")
    for col in USE_CASE_HEADERS:
        table.add_column(col)
    for row in use_case_rows():
        table.add_row(*row)
    return table


def variant_table() -> Table:
    from rich.table import Table

    from lf_tui.present.methods_table import VARIANT_HEADERS, variant_rows

    table = Table(title="Variants (options of a method)")
    for col in VARIANT_HEADERS:
        table.add_column(col)
    for row in variant_rows():
        table.add_row(*row)
    return table


def run(args: argparse.Namespace) -> int:
    from engine.planning import PlanError, model_shape
    from lf_tui.cli import console
    from lf_tui.present.methods_table import REFERENCE_MODEL, memory_cell
    from methods.catalogue import get_catalogue
    from methods.config_paths import resolve_cli_path

    catalogue = get_catalogue()
    base_model = resolve_cli_path(args.base_model) or REFERENCE_MODEL
    try:
        known = model_shape(base_model)  # read once, for every method's row
    except PlanError as exc:
        console.err().print(f"[red]error:[/red] {exc.message}\n  hint: {exc.hint}")
        return 2
    if args.json:
        out = {
            "methods": [
                {"name": m.name, "title": m.info.title, "summary": m.info.summary, "matrix": vars(m.info.matrix),
                 "planned_memory": memory_cell(m, base_model, known),
                 "variants": [{"title": v.title, "options": v.options, "summary": v.summary} for v in m.info.variants]}
                for m in catalogue
            ],
            "use_cases": [dict(zip(("use_case", "primary", "secondary", "notes"), r)) for r in catalogue.use_case_table()],
        }
        print(json.dumps(out, indent=2))
        return 0
    screen = console.out()
    screen.print(matrix_table(base_model if args.base_model else None, known))
    screen.print(use_case_table())
    if any(m.info.variants for m in catalogue):
        screen.print(variant_table())
    for m in catalogue:
        screen.print(f"[bold]{m.name}[/bold]: {m.info.summary}")
    return 0
