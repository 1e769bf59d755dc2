"""`lf-tui runs` and `lf-tui cancel`."""

from __future__ import annotations

import argparse
import json
import time

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
    table = Table(title=f"Runs in {RunStore(args.runs_dir).root}")
    for col in ("run", "method", "base model", "status", "steps", "final loss", "best loss", "duration", "started"):
        table.add_column(col)
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started)) if r.started else "—"
        status = r.status + (" ⚠" if r.problems else "")
        table.add_row(r.run_id, r.method, r.base_model, status, f"{r.steps}/{r.total_steps or '?'}",
                      number(r.final_loss), number(r.best_loss), duration(r.duration_s), started)
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
