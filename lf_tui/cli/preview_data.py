"""`lf-tui preview-data -c CONFIG`: the first examples as training tokenises them (`python -m engine.preview`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("preview-data", help="show the data as training sees it: template, trained tokens, lengths")
    p.add_argument("--config", "-c", required=True, help="config JSON file")
    p.add_argument("--method", "-m", help="method (must agree with the config)")
    p.add_argument("--dataset", help="a .jsonl/.json/.csv/.parquet file, a folder or a hub dataset id "
                                     "(default: the bundled sample dataset)")
    p.add_argument("--eval-dataset", help="a separate evaluation file")
    p.add_argument("-n", type=int, default=3, help="examples to show (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object: each example's tokens as text "
                                                       "pieces with a `trained` flag, the lengths and counts")
    p.set_defaults(handler=run)


def engine_request(module: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run `python -m <module>` with `request` on stdin; its one JSON line (or an error object)."""
    import subprocess
    import sys

    from engine.launcher import PROJECT_ROOT, engine_env

    try:
        proc = subprocess.run([sys.executable, "-m", module], input=json.dumps(request), capture_output=True,
                              text=True, env=engine_env(), cwd=str(PROJECT_ROOT))
    except OSError as exc:
        return {"error": f"cannot start the engine: {exc}", "kind": "internal", "hint": ""}
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"the engine process failed (exit {proc.returncode})", "kind": "internal",
                "hint": proc.stderr[-1500:]}
    return result if isinstance(result, dict) else {"error": "the engine answered no object", "kind": "internal"}


def dataset_path(value: str | None) -> str | None:
    """A dataset named on the command line or in the editor, as a run records it: absolute against the working
    directory when it exists (a hub id stays); a missing file is a ValueError."""
    if not value:
        return None
    path = Path(value).expanduser()
    if path.exists():
        return str(path.resolve())
    if value.endswith(DATA_SUFFIXES) or value.startswith((".", "/", "~")):
        raise ValueError(f"{value}: no such dataset file")
    return value


def request_preview(config: Any, base_dir: Path, dataset: str | None, eval_dataset: str | None = None,
                    n: int = 3) -> dict[str, Any]:
    """The engine's preview of a validated config whose relative paths resolve against `base_dir`."""
    from methods.config_paths import resolve_config_paths

    try:
        request = {"config": resolve_config_paths(config, base_dir).model_dump(mode="json"),
                   "dataset": dataset_path(dataset), "eval_dataset": dataset_path(eval_dataset), "n": n}
    except ValueError as exc:
        return {"error": str(exc), "kind": "data", "hint": "give an existing file, a folder or a hub id"}
    return engine_request("engine.preview", request)


def error_text(result: dict[str, Any]) -> str:
    """An engine error as markup: the kind, the message, the hint."""
    from rich.markup import escape

    hint = f"\n  fix: {escape(result['hint'])}" if result.get("hint") else ""
    return f"[red]{escape(result.get('kind', 'engine'))} error:[/red] {escape(result['error'])}{hint}"


def run(args: argparse.Namespace) -> int:
    from lf_tui.cli import console
    from lf_tui.cli.validate import print_report
    from lf_tui.present.preview_text import preview_group
    from lf_tui.run_setup import RunSetupError, config_for_train

    err = console.err()
    if args.n < 0:
        err.print("[red]error:[/red] -n must be 0 or more")
        return 2
    try:
        resolved = config_for_train(args.config, args.method)
    except RunSetupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return exc.exit_code
    if not resolved.report.ok or resolved.config is None:
        print_report(err, resolved.report)
        return 1
    if not args.json:
        err.print("[dim]loading the tokenizer and tokenising the dataset…[/dim]")
    result = request_preview(resolved.config, Path(args.config).parent, args.dataset, args.eval_dataset, args.n)
    if "error" in result:
        err.print(error_text(result))
        return 1
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    out = console.out()
    out.print(preview_group(result, plain=out.color_system is None))
    return 0
