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
    p.add_argument("--distributed", action="store_true", help="one rank of a multi-process run (accelerate started it)")
    s = sub.add_parser("supervise", help="start every rank of a multi-process run through accelerate and watch them")
    s.add_argument("run_dir", type=Path)
    s.add_argument("--resume", action="store_true")
    s.add_argument("--launched-at", type=float)
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
    if args.command == "supervise":
        from engine.supervisor import supervise

        return supervise(args.run_dir, args.resume, args.launched_at)
    if args.distributed:
        return _rank(args)
    return _run(args)


def _rank(args: argparse.Namespace) -> int:
    """One rank: its output to ranks/rank-N.log, its pid and then its ending in ranks/rank-N.json (the supervisor
    holds the run's lock and names a rank that dies). A clean ending exits 0, so accelerate stops no other rank."""
    import os

    from engine.control import catch_early_signals

    catch_early_signals()
    from engine.distributed import rank_log, write_rank_record

    rank = int(os.environ.get("RANK", "0"))
    log_path = rank_log(args.run_dir, rank)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    import psutil

    write_rank_record(args.run_dir, rank, {"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                           "status": "running", "log": str(log_path)})
    from engine.run_store import EXIT_CODES
    from engine.runner import run

    try:
        code = run(args.run_dir, None, args.resume, launched_at=args.launched_at, rank=rank)
    except BaseException as exc:
        from engine.distributed import peer_failure

        write_rank_record(args.run_dir, rank, {"pid": os.getpid(), "status": "failed", "log": str(log_path),
                                               "error": f"{type(exc).__name__}: {exc}"[:1000],
                                               "peer_lost": peer_failure(exc)})
        raise
    from engine.distributed import read_rank_records

    status = {v: k for k, v in EXIT_CODES.items()}.get(code, "failed")
    error = read_rank_records(args.run_dir).get(rank, {}).get("error")  # the rank's error event, if it had one
    write_rank_record(args.run_dir, rank, {"pid": os.getpid(), "status": status, "exit_code": code,
                                           "log": str(log_path), **({"error": error} if error else {})})
    return 0 if status != "failed" else 1


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
