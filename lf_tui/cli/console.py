"""Rich consoles for the CLI: messages never hard-wrap (paths stay greppable); tables fit the terminal."""

from __future__ import annotations

import sys

from rich.console import Console


def out() -> Console:
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)


def resolve_run(runs_dir: str | None, id_or_path: str):  # -> RunDir | None
    """The run named on the command line, or None after printing why there is none."""
    from engine.run_store import RunNotFound, RunStore

    try:
        return RunStore(runs_dir).resolve(id_or_path)
    except RunNotFound as exc:
        err().print(f"[red]error:[/red] {exc}")
        return None
