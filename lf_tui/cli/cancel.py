"""`lf-tui cancel RUN`: ask a running (e.g. detached) run to stop; it saves a checkpoint first."""

from __future__ import annotations

import argparse

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cancel", help="cancel a running run (it saves a checkpoint)")
    p.add_argument("run", help="run id or folder")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run

    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    refusal = found.cancel()
    if refusal:
        console.out().print(escape(refusal))
        return 1
    console.out().print(f"asked run {found.run_id} to cancel; it saves a checkpoint and stops at the next step")
    return 0
