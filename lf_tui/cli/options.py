"""Options several commands share (the run store, training inputs) and the run a command names."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.run_store import RunDir


def add_runs_dir(p: argparse.ArgumentParser, *, root: bool = False) -> None:
    """`--runs-dir`; on a command it overrides the one given before the command only when given."""
    p.add_argument("--runs-dir", help="run store folder (default: $LF_TUI_RUNS_DIR or ./runs)",
                   default=None if root else argparse.SUPPRESS)


def add_training_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="a .jsonl/.json/.csv/.parquet file, a folder or a hub dataset id "
                                     "(default: the bundled sample dataset)")
    p.add_argument("--eval-dataset", help="a separate evaluation file")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--plain", action="store_true", help="print plain lines instead of the live view")
    p.add_argument("--detach", action="store_true", help="start the run in the background and return")
    add_runs_dir(p)


def missing_runs_dir(runs_dir: str | None) -> str | None:
    """Why a runs folder named by --runs-dir or $LF_TUI_RUNS_DIR cannot be read (it does not exist, or is a file);
    None when it can, or when it is the default ./runs (which the first run creates)."""
    import os

    from engine.run_store import ENV_RUNS_DIR, RunStore

    source = "--runs-dir" if runs_dir else (ENV_RUNS_DIR if os.environ.get(ENV_RUNS_DIR) else None)
    root = RunStore(runs_dir).root
    if source is None or root.is_dir():
        return None
    what = "is a file, not a folder" if root.exists() else "does not exist"
    return f"the runs folder {root} (from {source}) {what}: check the path"


def resolve_run(runs_dir: str | None, id_or_path: str) -> RunDir | None:
    """The run named on the command line, or None after printing why there is none."""
    from engine.run_store import RunNotFound, RunStore
    from lf_tui.cli import console

    try:
        return RunStore(runs_dir).resolve(id_or_path)
    except RunNotFound as exc:
        console.err().print(f"[red]error:[/red] {exc}")
        return None
