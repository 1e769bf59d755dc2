"""`lf-tui train`: start a run from a config file, or `--resume` one, and watch it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lf_tui.cli.options import add_training_inputs

if TYPE_CHECKING:
    from engine.launcher import EngineProcess
    from engine.run_store import RunDir, RunStore
    from methods.validation import Resolved


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train with a config file")
    p.add_argument("--method", "-m", help="method (must agree with the config)")
    p.add_argument("--config", "-c", help="config JSON file")
    p.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
    p.add_argument("--node-rank", type=int, metavar="N",
                   help="this machine's rank in a multi-machine run (hardware.distributed.machine_rank; 0: the main one)")
    add_training_inputs(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from engine.run_store import RunStore
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run
    from lf_tui.run_setup import RunSetupError, config_for_train

    err = console.err()
    if args.resume:
        found = resolve_run(args.runs_dir, args.resume)
        if found is None:
            return 2
        refusal = found.resume_refusal() or found.writable_refusal()
        if refusal:
            err.print(f"[red]error:[/red] {escape(refusal)}")
            return 2
        return start(found, args, resume=True)
    if not args.config:
        err.print("[red]error:[/red] give --config FILE (or --resume RUN); `lf-tui quick-train` uses the defaults")
        return 2
    try:
        resolved = config_for_train(args.config, args.method, max_steps=args.max_steps)
    except RunSetupError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return exc.exit_code
    if args.node_rank is not None:
        set_node_rank(resolved, args.node_rank, args.config)
    return create_and_start(RunStore(args.runs_dir), resolved, args, Path(args.config).parent)


def set_node_rank(resolved: Resolved, node_rank: int, source: str) -> None:
    """--node-rank N: this machine's rank, checked against the config's machines like the file's own value."""
    from methods.distributed_rules import check_distributed
    from methods.report import Report

    if resolved.config is None:
        return
    resolved.config.hardware.distributed.machine_rank = node_rank
    report = Report(source=source)
    if node_rank < 0:
        report.error("hardware.distributed.machine_rank", f"--node-rank {node_rank} is negative", node_rank,
                     "machine ranks start at 0 (the main machine)")
    check_distributed(report, resolved.config)
    for issue in report.errors:
        issue.message = f"(from --node-rank {node_rank}) {issue.message}"
        resolved.report.errors.append(issue)
    if report.errors:
        resolved.config = None


def create_and_start(store: RunStore, resolved: Resolved, args: argparse.Namespace,
                     config_dir: Path | None = None) -> int:
    """A valid config becomes a run folder and a started engine; an invalid one is reported (exit 1)."""
    from rich.markup import escape

    from lf_tui.cli import console
    from lf_tui.cli.validate import print_report
    from lf_tui.run_setup import RunSetupError, create_run

    err = console.err()
    if not resolved.report.ok or resolved.config is None:
        print_report(err, resolved.report)
        return 1
    for warning in resolved.report.warnings:
        err.print(f"[yellow]warning[/yellow] {warning.render()}")
    try:
        new_run = create_run(store, resolved.config, args.dataset, args.eval_dataset, config_dir)
    except RunSetupError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return exc.exit_code
    return start(new_run, args, resume=False)


def start(run_dir: RunDir, args: argparse.Namespace, resume: bool) -> int:
    import sys

    from rich.markup import escape

    from engine.launcher import RunLocked, launch
    from lf_tui.cli import console
    from lf_tui.cli.live_view import watch

    out = console.out()
    try:
        proc = launch(run_dir, resume=resume, pipe=not args.detach)
    except OSError as exc:  # the disk filled (or the folder turned read-only) after the store's check
        console.err().print(f"[red]error:[/red] cannot start the engine in {escape(str(run_dir.path))}: "
                            f"{escape(exc.strerror or str(exc))}; free some space or give --runs-dir DIR")
        return 1
    if args.detach:
        out.print(f"started run {run_dir.run_id} (pid {proc.pid}) in {run_dir.path}; "
                  f"`lf-tui attach {run_dir.run_id}` to watch")
        return 0
    out.print(f"run {run_dir.run_id} in {run_dir.path}")
    try:
        return watch(proc.events(), plain=args.plain or not sys.stdout.isatty(), on_interrupt=proc.cancel,
                     interrupt_text="cancelling: saving a checkpoint (press Ctrl-C again to stop watching)",
                     run=run_dir, settle=lambda: _engine_exit(proc))
    except RunLocked as exc:  # another `--resume` won the race for this run
        console.err().print(f"[red]error:[/red] {escape(str(exc))}")
        return 2


def _engine_exit(proc: EngineProcess, timeout_s: float = 30.0) -> None:
    """Wait for an engine whose events ended to exit (it releases the run a moment after its last event), so the
    next command (a resume, a delete) finds the run ended; a slow one is left to finish on its own."""
    import subprocess

    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        pass
