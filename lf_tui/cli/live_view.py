"""The CLI's view of a run as it trains: a Rich live panel or plain lines, then the summary or the error."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from queue import Empty, Queue
from threading import Thread
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from engine.protocol import Event, Finished, UnsupportedProtocol
from engine.run_store import INTERRUPTED, LIVE, RunDir, exit_code
from lf_tui.cli import console
from lf_tui.present import ending, run_text
from lf_tui.run_state import RunState


def watch(events: Iterable[Event], plain: bool, on_interrupt: Callable[[], None] | None,
          interrupt_text: str = "", run: RunDir | None = None, settle: Callable[[], None] | None = None) -> int:
    """Show events until the run ends; returns 0 completed, 1 failed or crashed, 130 cancelled/detached.
    `settle`: called when the run's events ended, before the closing lines (e.g. wait for the engine to exit, so
    the resume they advise is not refused as "still running").

    A first Ctrl-C calls `on_interrupt` (cancel) when given, else detaches; a second one stops watching and says
    what the run is doing then (read from `run`'s folder): still cancelling, or how it ended."""
    from rich.live import Live

    out = console.out()
    state = RunState(max_points=200)
    interrupted = False
    live = None if plain else Live(render(state), console=out, refresh_per_second=4, transient=False)
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
    alerts_shown = 0
    previous = signal.signal(signal.SIGINT, lambda *_: interrupts.append(1))
    try:
        if live:
            live.start()
        while True:
            if len(interrupts) > int(interrupted):
                if on_interrupt is None:
                    out.print("detached; the run goes on")
                    return INTERRUPTED
                if interrupted:  # the cancel asked for goes on without us
                    status = state.status if state.finished is not None or run is None else run.info().status
                    out.print(escape(ending.left_while_cancelling(run.run_id if run else "", status)))
                    return exit_code(status) if status not in LIVE else INTERRUPTED
                interrupted = True
                out.print(interrupt_text)
                on_interrupt()
            try:
                event = queue.get(timeout=0.2)
            except Empty:
                continue
            if event is done:
                break
            if isinstance(event, UnsupportedProtocol):
                out.print(f"[red]error:[/red] {event}")
                return 1
            if isinstance(event, Exception):
                raise event
            state.ingest(event)
            for alert in state.alerts[alerts_shown:]:  # the terminal bell, and the alert above the panel
                out.print(f"\a[yellow]alert:[/yellow] {escape(alert.message)}")
            alerts_shown = len(state.alerts)
            if live:
                live.update(render(state))
            else:
                line = run_text.event_line(event)
                if line is not None:
                    out.print(escape(line))
    finally:
        signal.signal(signal.SIGINT, previous)
        if live:
            live.stop()
    if settle is not None:
        settle()
    return _final(out, state, run)


def _final(out: Console, state: RunState, run: RunDir | None = None) -> int:
    """The summary, then why a run that did not complete ended and what to do next; the exit code."""
    finished = state.finished if isinstance(state.finished, Finished) else None
    status = finished.status if finished is not None else ("failed" if state.error else "crashed")
    if finished is not None and state.last_step is not None:  # one that failed before its first step has no figures
        out.print(summary_table(finished.summary))
    refusal = run.resume_refusal(status) if run is not None and status in ending.RESUMABLE else None
    failure = ending.failure_of(state.error, finished.summary if finished is not None else None)
    lines = ending.ended_lines(run.run_id if run else "RUN", status, failure, refusal)  # a crash says so once
    for i, line in enumerate(lines):
        out.print(f"[red]{escape(line)}[/red]" if i == 0 and status != "cancelled" else f"  {escape(line)}")
    return exit_code(status)


def summary_table(summary: dict[str, Any]) -> Table:
    rows = run_text.summary_rows(summary)
    table = Table(title=run_text.summary_title(summary), show_header=False)
    for label, value in rows[1:]:
        table.add_row(label, value)
    return table


def render(state: RunState) -> Group:
    table = Table.grid(padding=(0, 2))
    table.add_row(run_text.header(state.started) if state.started else "starting…")
    if state.last_step:
        table.add_row(run_text.step_line(state.last_step))
    if state.last_eval:
        table.add_row(run_text.eval_line(state.last_eval))
    for line in run_text.method_lines(state.method_metrics):
        table.add_row(line)
    table.add_row("  ".join(state.memory_lines()))
    return Group(table, ProgressBar(total=1.0, completed=state.progress, width=60))
