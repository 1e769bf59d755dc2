"""`lf-tui attach RUN`: replay a run's events and follow it live; Ctrl-C detaches, the run goes on."""

from __future__ import annotations

import argparse

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("attach", help="replay a run's events and follow it live")
    p.add_argument("run", help="run id or folder")
    p.add_argument("--plain", action="store_true")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from engine.launcher import follow_events
    from lf_tui.cli import console
    from lf_tui.cli.live_view import watch
    from lf_tui.cli.options import resolve_run

    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    console.out().print(f"attached to {found.run_id} ({found.info().status}); Ctrl-C detaches, the run goes on")
    return watch(follow_events(found), plain=args.plain or not sys.stdout.isatty(), on_interrupt=None,
                 run=found)
