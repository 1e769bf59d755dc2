"""`python -m engine run RUN_DIR [--events-fd N] [--resume]`: the training process (started by the launcher)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train the run in RUN_DIR")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--events-fd", type=int, help="file descriptor to stream events to")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    from engine.runner import run

    return run(args.run_dir, args.events_fd, args.resume)


if __name__ == "__main__":
    sys.exit(main())
