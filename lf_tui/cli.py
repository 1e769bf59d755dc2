"""The `lf-tui` command line: parses arguments and hands off to one module per command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def _add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", help="run store folder (default: $LF_TUI_RUNS_DIR or ./runs)")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="a .jsonl/.json/.csv/.parquet file, a folder or a hub dataset id "
                                     "(default: the bundled sample dataset)")
    p.add_argument("--eval-dataset", help="a separate evaluation file")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--plain", action="store_true", help="print plain lines instead of the live view")
    p.add_argument("--detach", action="store_true", help="start the run in the background and return")
    _add_runs_dir(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lf-tui", description="Fine-tune LLMs from the terminal.")
    parser.add_argument("--runs-dir", dest="app_runs_dir", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("validate-config", help="validate a config file against its method")
    p.add_argument("--config", "-c", required=True, help="config JSON file")
    p.add_argument("--method", "-m", help="method the config is for (must agree with the file)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--write-upgraded", action="store_true", help="write the migrated config back (keeps a .bak)")

    p = sub.add_parser("methods", help="the method selection matrix and recommendations")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")

    p = sub.add_parser("train", help="train with a config file")
    p.add_argument("--method", "-m", help="method (must agree with the config)")
    p.add_argument("--config", "-c", help="config JSON file")
    p.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
    _add_training_args(p)

    p = sub.add_parser("quick-train", help="train with a method's defaults")
    p.add_argument("--method", "-m", required=True, help="method")
    p.add_argument("--base-model", "-b", default="builtin:tiny-llama", help="hub id, folder or builtin:tiny-llama")
    _add_training_args(p)

    p = sub.add_parser("generate", help="greedy completion from a trained run")
    p.add_argument("--run", required=True, help="run id or folder")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--compare-base", action="store_true", help="also print the base model's completion")
    p.add_argument("--json", action="store_true")
    _add_runs_dir(p)

    p = sub.add_parser("runs", help="list runs with their status")
    p.add_argument("--json", action="store_true")
    _add_runs_dir(p)

    p = sub.add_parser("attach", help="replay a run's events and follow it live")
    p.add_argument("run", help="run id or folder")
    p.add_argument("--plain", action="store_true")
    _add_runs_dir(p)

    p = sub.add_parser("cancel", help="cancel a running run (it saves a checkpoint)")
    p.add_argument("run", help="run id or folder")
    _add_runs_dir(p)

    p = sub.add_parser("edit", help="open a config file in the TUI editor")
    p.add_argument("path", help="config JSON file (created when missing)")
    p.add_argument("--method", "-m", help="method for a new file")
    _add_runs_dir(p)
    return parser


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    if name in ("validate-config", "methods"):
        from lf_tui import cli_config as mod
    elif name in ("train", "quick-train", "attach"):
        from lf_tui import cli_train as mod
    elif name in ("runs", "cancel"):
        from lf_tui import cli_runs as mod
    elif name == "generate":
        from lf_tui import cli_generate as mod
    else:
        from lf_tui import cli_app as mod
    return getattr(mod, "cmd_" + name.replace("-", "_"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "app"
    if command == "app":
        args.runs_dir = args.app_runs_dir
    try:
        return _command(command)(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
