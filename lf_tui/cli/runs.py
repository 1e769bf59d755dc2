"""`lf-tui runs`: every run with its status (a compact table in an 80-column terminal), or JSON."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from lf_tui.cli.options import add_runs_dir

if TYPE_CHECKING:
    from engine.run_store import RunInfo


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runs", help="list runs with their status")
    p.add_argument("--json", action="store_true")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from engine.run_store import RunStore
    from lf_tui.cli import console
    from lf_tui.cli.options import missing_runs_dir
    from lf_tui.present.formatting import shown_path
    from lf_tui.present.runs_table import COMPACT_BELOW, REASON, columns_for, problem_lines

    missing = missing_runs_dir(args.runs_dir)
    if missing:
        console.err().print(f"[red]error:[/red] {escape(missing)}")
        return 2
    store = RunStore(args.runs_dir)
    runs = store.list()
    if args.json:
        print(json.dumps([as_json(r) for r in runs], indent=2, default=str))
        return 0
    out = console.out()
    if not runs:
        out.print(f"no runs in {shown_path(store.root)}")
        return 0
    keys, labels = columns_for(out.width)  # an 80-column SSH terminal: the columns that matter, no box
    title = f"Runs in {shown_path(store.root)}"
    table = runs_table(title, runs, keys, labels, out.width < COMPACT_BELOW)
    room = out.width - out.measure(table).maximum - 3
    if room >= MIN_REASON:  # why each run ended, in the room the other columns leave
        table = runs_table(title, runs, [*keys, REASON], labels, out.width < COMPACT_BELOW, room)
    out.print(table)
    for line in problem_lines(runs):
        out.print(escape(line), style="yellow")
    return 0


MIN_REASON = 12  # narrower, the reason column says too little to be worth a column


def runs_table(title: str, runs: list[RunInfo], keys: list[str], labels: dict[str, str], compact: bool,
               reason_width: int | None = None) -> Any:
    """The runs as a Rich table: every cell whole (ids are what `attach`/`cancel` need) but the model's and the
    reason's, cut at their width with an ellipsis."""
    from rich import box
    from rich.table import Table

    from lf_tui.present.runs_table import row

    rows = [row(r, keys) for r in runs]
    table = Table(title=title, box=box.SIMPLE if compact else box.HEAVY_HEAD, pad_edge=not compact)
    for i, key in enumerate(keys):
        widest = max(len(labels[key]), *(len(cells[i]) for cells in rows))
        cut = {"base_model": 24, "reason": reason_width}.get(key)
        table.add_column(labels[key], no_wrap=True, overflow="ellipsis", max_width=cut,
                         min_width=None if key in ("base_model", "reason") else widest)
    for cells in rows:
        table.add_row(*cells)
    return table


def as_json(info: RunInfo) -> dict[str, Any]:
    """A run for `--json`: the store's figures, the error of a failed run ({kind, message, hint} or null) and what
    to do next."""
    from dataclasses import asdict

    from lf_tui.run_ending import info_failure, info_next_steps

    failure = info_failure(info)
    return {**info.to_dict(), "error": asdict(failure) if failure is not None else None,
            "next_steps": info_next_steps(info)}
