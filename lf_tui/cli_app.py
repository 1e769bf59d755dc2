"""`lf-tui` (no command) and `lf-tui edit PATH`: open the dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_app(args: argparse.Namespace) -> int:
    from lf_tui.app import LfTuiApp

    LfTuiApp(runs_dir=args.runs_dir).run()
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from lf_tui.app import LfTuiApp
    from methods.catalogue import get_catalogue

    method = args.method or "lora"
    if method not in get_catalogue():
        print(f"error: unknown method {method!r}; known: {', '.join(get_catalogue().names())}")
        return 2
    LfTuiApp(runs_dir=args.runs_dir, edit_path=Path(args.path), edit_method=method).run()
    return 0
