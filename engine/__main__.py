"""`python -m engine run RUN_DIR [--events-fd N] [--resume]`: the training process (started by the launcher)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ENTRY_TIME = time.time()  # when the interpreter reached our code (startup accounting)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train the run in RUN_DIR")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--events-fd", type=int, help="file descriptor to stream events to")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--launched-at", type=float, help="when the launcher started us (start-up accounting)")
    g = sub.add_parser("generate", help="print one JSON line with a greedy completion from RUN_DIR")
    g.add_argument("run_dir", type=Path)
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-new-tokens", type=int, default=32)
    g.add_argument("--compare-base", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "generate":
        return _generate(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Hold the run's lock for the whole training; a second engine on the same run leaves it untouched."""
    from engine.control import catch_early_signals

    catch_early_signals()  # a cancel while we import and load is a cancel, not a kill
    from engine.run_lock import LOCKED_EXIT, RunLock, RunLocked

    lock = RunLock(args.run_dir)
    try:
        lock.acquire()
    except RunLocked as exc:
        print(f"error: {exc}; not starting a second one", file=sys.stderr)
        return LOCKED_EXIT
    except OSError as exc:
        print(f"error: {args.run_dir}: cannot lock the run folder ({exc})", file=sys.stderr)
        return 2
    from engine.runner import run

    try:
        return run(args.run_dir, args.events_fd, args.resume, launched_at=args.launched_at)
    finally:
        lock.release()


def _generate(args: argparse.Namespace) -> int:
    """Library chatter goes to stderr; stdout carries only the JSON result."""
    import json
    import os

    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from engine.errors import EngineError
    from engine.generate import generate
    from engine.run_store import RunDir

    try:
        result = generate(RunDir(args.run_dir), args.prompt, args.max_new_tokens, args.compare_base)
    except EngineError as exc:
        result = {"error": exc.message, "kind": exc.kind, "hint": exc.hint}
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
