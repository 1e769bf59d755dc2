"""`lf-tui train`, `quick-train` and `attach`: start or follow a run and show it live (Rich) or as plain lines."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from queue import Empty, Queue
from threading import Thread
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from engine.launcher import SegmentOpened, follow_events, launch
from engine.protocol import Event, Finished, RunStarted, Step, UnsupportedProtocol
from engine.run_lock import RunLocked
from engine.run_store import RunStore
from lf_tui import consoles, run_text
from lf_tui.formatting import duration
from lf_tui.run_model import RunModel
from lf_tui.run_setup import RunSetupError, config_for_quick_train, config_for_train, create_run

EXIT = {"completed": 0, "cancelled": 130}


def cmd_train(args: argparse.Namespace) -> int:
    err = consoles.err()
    store = RunStore(args.runs_dir)
    if args.resume:
        run = consoles.resolve_run(args.runs_dir, args.resume)
        if run is None:
            return 2
        refusal = run.resume_refusal()
        if refusal:
            err.print(f"[red]error:[/red] {escape(refusal)}")
            return 2
        return _start(run, args, resume=True)
    if not args.config:
        err.print("[red]error:[/red] give --config FILE (or --resume RUN); `lf-tui quick-train` uses the defaults")
        return 2
    try:
        resolved = config_for_train(args.config, args.method, max_steps=args.max_steps)
    except RunSetupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return exc.exit_code
    return _create_and_start(store, resolved, args, Path(args.config).parent)


def cmd_quick_train(args: argparse.Namespace) -> int:
    resolved, note = config_for_quick_train(args.method, args.base_model, max_steps=args.max_steps)
    if note:
        consoles.err().print(f"[dim]{note}[/dim]")
    return _create_and_start(RunStore(args.runs_dir), resolved, args)


def _create_and_start(store: RunStore, resolved: Any, args: argparse.Namespace, config_dir: Path | None = None) -> int:
    from lf_tui.cli_config import print_report

    err = consoles.err()
    if not resolved.report.ok:
        print_report(err, resolved.report)
        return 1
    for warning in resolved.report.warnings:
        err.print(f"[yellow]warning[/yellow] {warning.render()}")
    try:
        run = create_run(store, resolved.config, args.dataset, args.eval_dataset, config_dir)
    except RunSetupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return exc.exit_code
    return _start(run, args, resume=False)


def _start(run: Any, args: argparse.Namespace, resume: bool) -> int:
    console = consoles.out()
    proc = launch(run, resume=resume, pipe=not args.detach)
    if args.detach:
        console.print(f"started run {run.run_id} (pid {proc.pid}) in {run.path}; `lf-tui attach {run.run_id}` to watch")
        return 0
    console.print(f"run {run.run_id} in {run.path}")
    try:
        return watch(proc.events(), plain=args.plain or not sys.stdout.isatty(), on_interrupt=proc.cancel,
                     interrupt_text="cancelling: saving a checkpoint (press Ctrl-C again to detach)")
    except RunLocked as exc:  # another `--resume` won the race for this run
        consoles.err().print(f"[red]error:[/red] {escape(str(exc))}")
        return 2


def cmd_attach(args: argparse.Namespace) -> int:
    run = consoles.resolve_run(args.runs_dir, args.run)
    if run is None:
        return 2
    consoles.out().print(f"attached to {run.run_id} ({run.info().status}); Ctrl-C detaches, the run goes on")
    return watch(follow_events(run), plain=args.plain or not sys.stdout.isatty(), on_interrupt=None)


def watch(events: Iterable[Event], plain: bool, on_interrupt: Callable[[], None] | None,
          interrupt_text: str = "") -> int:
    """Show events until the run ends; returns 0 completed, 1 failed or crashed, 130 cancelled/detached."""
    console = consoles.out()
    model = RunModel(max_points=200)
    interrupted = False
    live = None if plain else Live(render(model), console=console, refresh_per_second=4, transient=False)
    queue: Queue[Any] = Queue(maxsize=10000)
    done = object()

    def pump() -> None:  # reads in a thread so Ctrl-C never lands inside the reader
        try:
            for item in events:
                queue.put(item)
        except Exception as exc:  # surfaced to the main thread
            queue.put(exc)
        queue.put(done)

    Thread(target=pump, name="event-reader", daemon=True).start()
    interrupts: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupts.append(1))
    try:
        if live:
            live.start()
        while True:
            if len(interrupts) > int(interrupted):
                if on_interrupt is None or interrupted:
                    console.print("detached; the run goes on")
                    return 130
                interrupted = True
                console.print(interrupt_text)
                on_interrupt()
            try:
                event = queue.get(timeout=0.2)
            except Empty:
                continue
            if event is done:
                break
            if isinstance(event, UnsupportedProtocol):
                console.print(f"[red]error:[/red] {event}")
                return 1
            if isinstance(event, Exception):
                raise event
            model.ingest(event)
            if live:
                live.update(render(model))
            else:
                _plain_line(console, event)
    finally:
        signal.signal(signal.SIGINT, previous)
        if live:
            live.stop()
    return _final(console, model)


def _plain_line(console: Console, event: Event) -> None:
    if isinstance(event, RunStarted):
        console.print(run_text.header(event))
    elif isinstance(event, Step):
        console.print(f"step {event.step}/{event.total_steps} epoch {event.epoch:.2f} loss {event.loss:.4f} "
                      f"lr {event.learning_rate:.3g} tok/s {event.tokens_per_s:.0f} eta {duration(event.eta_s)}")
    elif isinstance(event, SegmentOpened):
        console.print("a new engine is resuming this run (loading the model and data)")
    elif event.type in ("eval", "log", "checkpoint"):
        fields = {k: v for k, v in event.to_dict().items() if k not in ("type", "ts")}
        console.print(f"{event.type}: " + " ".join(f"{k}={v}" for k, v in fields.items()))


def _final(console: Console, model: RunModel) -> int:
    if model.error:
        first, *rest = run_text.error_lines(model.error)
        console.print(f"[red]{escape(first)}[/red]")
        for line in rest:
            console.print(f"  {escape(line)}")
    if not isinstance(model.finished, Finished):
        console.print("[red]the engine stopped without finishing (crashed); see engine.log in the run folder[/red]")
        return 1
    if model.last_step is not None:  # a run that failed before its first step has no figures to show
        console.print(summary_table(model.finished.summary))
    return EXIT.get(model.finished.status, 1)


def summary_table(summary: dict[str, Any]) -> Table:
    rows = run_text.summary_rows(summary)
    table = Table(title=f"Run {rows[0][1]}", show_header=False)
    for label, value in rows[1:]:
        table.add_row(label, value)
    return table


def render(model: RunModel) -> Group:
    s, st = model.last_step, model.started
    table = Table.grid(padding=(0, 2))
    head = run_text.header(st) if st else "starting…"
    table.add_row(head)
    if s:
        table.add_row(f"step {s.step}/{s.total_steps}  epoch {s.epoch:.2f}  loss {s.loss:.4f}  lr {s.learning_rate:.3g}"
                      f"  tok/s {s.tokens_per_s:.0f}  elapsed {duration(s.elapsed_s)}  ETA {duration(s.eta_s)}")
    if model.last_eval:
        table.add_row(f"eval loss {model.last_eval.eval_loss:.4f}  perplexity {model.last_eval.perplexity:.2f}")
    table.add_row("  ".join(model.memory_lines()))
    return Group(table, ProgressBar(total=1.0, completed=model.progress, width=60))
