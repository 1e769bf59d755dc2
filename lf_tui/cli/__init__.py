"""The `lf-tui` command line: each command's module registers its own parser and handler; imports stay lazy."""

from __future__ import annotations

import argparse
import importlib
import sys

# one module per command (or pair of related commands), in the order `--help` lists them
COMMAND_MODULES = ("dashboard", "validate", "matrix", "train", "quick_train", "runs", "attach", "cancel", "control",
                   "report", "generate", "export", "fuse", "plan", "probe", "recommend", "preview_data", "eval")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lf-tui", description="Fine-tune LLMs from the terminal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"lf_tui.cli.{name}").register(parser, sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        from engine.run_store import INTERRUPTED

        return INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
