"""`lf-tui runs` and `lf-tui cancel`."""

from __future__ import annotations

import argparse
import json
import time

from rich import box
from rich.table import Table

from engine.launcher import cancel_pid
from engine.run_store import RunStore
from lf_tui import consoles
from lf_tui.formatting import duration, number


def cmd_runs(args: argparse.Namespace) -> int:
    runs = RunStore(args.runs_dir).list()
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2, default=str))
        return 0
    console = consoles.out()
    if not runs:
        console.print(f"no runs in {RunStore(args.runs_dir).root}")
        return 0
    compact = console.width < 120  # an 80-column SSH terminal: the columns that matter, no box
    headers = ["run", "method", "base model", "status", "steps", "final loss", "best loss", "duration", "started"]
    rows = []
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started)) if r.started else "—"
        rows.append([r.run_id, r.method, r.base_model, r.status + (" ⚠" if r.problems else ""),
                     f"{r.steps}/{r.total_steps or '?'}", number(r.final_loss), number(r.best_loss),
                     duration(r.duration_s), started])
    keep = [0, 1, 3, 4, 5, 7] if compact else list(range(len(headers)))
    if compact:
        headers[5], headers[7] = "loss", "time"
    table = Table(title=f"Runs in {RunStore(args.runs_dir).root}", box=box.SIMPLE if compact else box.HEAVY_HEAD,
                  pad_edge=not compact)
    for i in keep:  # every cell whole (ids are what `attach`/`cancel` need); only the base model may be cut
        widest = max(len(headers[i]), *(len(row[i]) for row in rows))
        table.add_column(headers[i], no_wrap=True, overflow="ellipsis", max_width=24 if i == 2 else None,
                         min_width=None if i == 2 else widest)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    console.print(table)
    for r in runs:
        for problem in r.problems:
            console.print(f"[yellow]{r.run_id}[/yellow]: {problem}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    console = consoles.out()
    run = consoles.resolve_run(args.runs_dir, args.run)
    if run is None:
        return 2
    info = run.info()
    if info.status != "running":
        console.print(f"run {run.run_id} is {info.status}, not running: nothing to cancel")
        return 1
    if not cancel_pid(int(run.engine_info()["pid"])):
        console.print(f"[red]error:[/red] could not signal the engine of {run.run_id}")
        return 1
    console.print(f"asked run {run.run_id} to cancel; it saves a checkpoint and stops at the next step")
    return 0
