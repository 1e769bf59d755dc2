"""`lf-tui attach RUN`: replay a run's events and follow it live (Ctrl-C detaches, the run goes on); an ended run is
replayed and said to be ended."""

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
    from engine.run_store import LIVE
    from lf_tui.cli import console
    from lf_tui.cli.live_view import watch
    from lf_tui.cli.options import resolve_run

    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    status = found.info().status
    console.out().print(f"attached to {found.run_id} ({status}); Ctrl-C detaches, the run goes on" if status in LIVE
                        else f"replaying {found.run_id} ({status}): it is not running")
    return watch(follow_events(found), plain=args.plain or not sys.stdout.isatty(), on_interrupt=None,
                 run=found)
