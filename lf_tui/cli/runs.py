"""`lf-tui runs`: every run with its status (a compact table in an 80-column terminal), or JSON."""

from __future__ import annotations

import argparse
import json

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runs", help="list runs with their status")
    p.add_argument("--json", action="store_true")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from engine.run_store import RunStore
    from lf_tui.cli import console
    from lf_tui.present.formatting import shown_path
    from lf_tui.present.runs_table import COMPACT_KEYS, columns_for, problem_lines, row

    store = RunStore(args.runs_dir)
    runs = store.list()
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2, default=str))
        return 0
    out = console.out()
    if not runs:
        out.print(f"no runs in {shown_path(store.root)}")
        return 0
    keys, labels = columns_for(out.width)  # an 80-column SSH terminal: the columns that matter, no box
    compact = keys is COMPACT_KEYS
    rows = [row(r, keys) for r in runs]
    table = Table(title=f"Runs in {shown_path(store.root)}", box=box.SIMPLE if compact else box.HEAVY_HEAD,
                  pad_edge=not compact)
    for i, key in enumerate(keys):  # every cell whole (ids are what `attach`/`cancel` need); only the model may be cut
        widest = max(len(labels[key]), *(len(cells[i]) for cells in rows))
        table.add_column(labels[key], no_wrap=True, overflow="ellipsis", max_width=24 if key == "base_model" else None,
                         min_width=None if key == "base_model" else widest)
    for cells in rows:
        table.add_row(*cells)
    out.print(table)
    for line in problem_lines(runs):
        out.print(escape(line), style="yellow")
    return 0
