"""`lf-tui control RUN checkpoint|stop-after-eval`: act on a running (e.g. detached) run and wait for its answer."""

from __future__ import annotations

import argparse

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("control", help="checkpoint now, or stop after the next evaluation, a running run")
    p.add_argument("run", help="run id or folder")
    p.add_argument("action", choices=["checkpoint", "stop-after-eval"])
    p.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                   help="how long to wait for the engine's answer (default 300; 0: do not wait)")
    p.add_argument("--json", action="store_true", help="print the engine's answer as JSON")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json
    import threading
    import time

    from rich.markup import escape

    from engine.control_requests import ControlRefused, send
    from engine.launcher import follow_events
    from engine.protocol import Control, Finished
    from engine.run_store import LIVE
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run

    out = console.out()
    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    status = found.info().status
    if status not in LIVE:
        out.print(escape(f"run {found.run_id} is {status}, not running: nothing to control"))
        return 1
    try:
        request = send(found.path, args.action, source="lf-tui control")
    except (ControlRefused, OSError) as exc:
        out.print(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    if args.wait <= 0:
        out.print(f"asked run {found.run_id}: {args.action} (request {request.id})")
        return 0
    stop = threading.Event()
    timer = threading.Timer(args.wait, stop.set)
    timer.daemon = True
    timer.start()
    answers = []
    started = time.monotonic()
    for event in follow_events(found, stop=stop.is_set):
        if isinstance(event, Control) and event.request == request.id:
            answers.append(event)
            if event.status != "armed" or args.action == "checkpoint":
                break
            out.print(escape(f"armed: {event.detail}")) if not args.json else None
        elif isinstance(event, Finished) and event.ts >= request.ts:
            break
    timer.cancel()
    if args.json:
        print(json.dumps([{"request": a.request, "action": a.action, "status": a.status, "step": a.step,
                           "detail": a.detail} for a in answers]))
    if not answers:
        out.print(escape(f"no answer from run {found.run_id} within {time.monotonic() - started:.0f}s "
                         "(it may have ended, or be between steps)")) if not args.json else None
        return 1
    last = answers[-1]
    if not args.json:
        out.print(escape(f"run {found.run_id}: {last.action.replace('_', ' ')} {last.status} at step {last.step}"
                         + (f": {last.detail}" if last.detail else "")))
    return 1 if last.status == "refused" else 0
