"""`lf-tui` (no command) and `lf-tui edit PATH`: open the dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_runs_dir(root, root=True)
    root.set_defaults(handler=run_app)
    p = sub.add_parser("edit", help="open a config file in the TUI editor")
    p.add_argument("path", help="config JSON file (created when missing)")
    p.add_argument("--method", "-m", help="method for a new file")
    add_runs_dir(p)
    p.set_defaults(handler=run_edit)


def run_app(args: argparse.Namespace) -> int:
    from lf_tui.app import LfTuiApp

    LfTuiApp(runs_dir=args.runs_dir).run()
    return 0


def run_edit(args: argparse.Namespace) -> int:
    from lf_tui.app import LfTuiApp
    from methods.catalogue import get_catalogue

    method = args.method or "lora"
    if method not in get_catalogue():
        print(f"error: unknown method {method!r}; known: {', '.join(get_catalogue().names())}")
        return 2
    LfTuiApp(runs_dir=args.runs_dir, edit_path=Path(args.path), edit_method=method).run()
    return 0
