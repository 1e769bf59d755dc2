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
    m = sub.add_parser("probe", help="print one JSON line with the measured peak memory of a config")
    m.add_argument("config", type=Path)
    m.add_argument("--dataset", help="measure at this dataset's longest example")
    m.add_argument("--steps", type=int, default=3)
    m.add_argument("--find-batch", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "generate":
        return _generate(args)
    if args.command == "probe":
        return _probe(args)
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


def _json_result(compute: object) -> int:
    """Run `compute()`; library chatter goes to stderr, stdout carries only the JSON result (or the error)."""
    import json
    import os

    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from engine.errors import EngineError

    try:
        result = compute()  # type: ignore[operator]
    except EngineError as exc:
        result = {"error": exc.message, "kind": exc.kind, "hint": exc.hint}
    except Exception as exc:  # reported as JSON (out of memory included), never a traceback on the user's terminal
        oom = "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
        result = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "kind": "oom" if oom else "internal",
                  "hint": "lower training.batch_size or max_seq_length" if oom else "this looks like a bug"}
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()
    return 1 if "error" in result else 0


def _generate(args: argparse.Namespace) -> int:
    def compute() -> dict[str, object]:
        from engine.generate import generate
        from engine.run_store import RunDir

        return generate(RunDir(args.run_dir), args.prompt, args.max_new_tokens, args.compare_base)

    return _json_result(compute)


def _probe(args: argparse.Namespace) -> int:
    def compute() -> dict[str, object]:
        import peft  # noqa: F401  (imported before the baseline: the peak above it is the training's)
        import torch  # noqa: F401
        import transformers  # noqa: F401

        from engine.probe import probe

        return probe(args.config, args.dataset, args.steps, args.find_batch)

    return _json_result(compute)


if __name__ == "__main__":
    sys.exit(main())
