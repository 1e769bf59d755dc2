"""`lf-tui eval RUN --tasks FILE`: multiple-choice accuracy of a run's model (and its base), by `python -m engine.evaluate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lf_tui.cli.options import add_runs_dir

REFUSALS = ("task", "offline", "store")  # the engine's error kinds for what it refused before a model loaded: exit 2


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("eval", help="multiple-choice accuracy of a run's trained model (and its base)")
    p.add_argument("run", help="run id, id prefix or folder")
    p.add_argument("--tasks", required=True, nargs="+", metavar="TASK",
                   help="JSONL file(s) of questions ({question or context, choices, answer}), `sample` for the "
                        "bundled one, or lm-eval task names (hellaswag, mmlu...) when lm-eval is installed")
    p.add_argument("--base", action="store_true", help="also evaluate the run's base model")
    p.add_argument("--limit", type=int, help="at most this many questions per task")
    p.add_argument("--json", action="store_true", help="print one JSON object (per question log-likelihoods too)")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def _tasks(values: list[str]) -> list[str]:
    """Task files made absolute against the working directory (the engine runs in the project's folder)."""
    out = []
    for value in values:
        for part in (v for v in value.split(",") if v):
            path = Path(part).expanduser()
            looks_like_file = path.exists() or part.endswith((".jsonl", ".json")) or "/" in part
            out.append(str(path.absolute()) if looks_like_file and part != "sample" else part)
    return out


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "-"


def show(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from lf_tui.cli import console

    out = console.out()
    table = Table(title=f"run {escape(result['run_id'])} · {escape(result['device'])} · {result['seconds']}s")
    for column in ("task", "model", "acc", "acc_norm", "questions"):
        table.add_column(column, justify="left" if column in ("task", "model") else "right")
    for entry in result["results"]:
        for model in ("base", "trained"):
            m = entry["models"].get(model)
            if m is None:
                continue
            acc = f"{_percent(m.get('acc'))} ({m.get('correct', '?')}/{m.get('count', '?')})"
            norm = f"{_percent(m.get('acc_norm'))} ({m.get('correct_norm', '?')}/{m.get('count', '?')})"
            table.add_row(escape(entry["task"]), model, acc, norm, str(m.get("count", "?")))
    out.print(table)
    for entry in result["results"]:
        out.print(f"[dim]{escape(entry['task'])}: {escape(entry['normalisation'])}; saved to "
                  f"{escape(entry['path'])}[/dim]")
        if entry.get("limited"):
            out.print(f"[dim]a limited evaluation (--limit {entry['limit']}): lf-tui report judges only the full "
                      "one, which it leaves in place[/dim]")


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    from rich.markup import escape

    from engine.launcher import PROJECT_ROOT, engine_env
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run
    from lf_tui.cli.preview_data import error_text

    err = console.err()
    if args.limit is not None and args.limit < 1:
        err.print("[red]error:[/red] --limit must be at least 1")
        return 2
    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    refusal = found.eval_refusal()
    if refusal is not None:  # said before a model loads, not after everything was scored
        err.print(f"[red]error:[/red] {escape(refusal)}")
        return 2
    tasks = _tasks(args.tasks)
    for task in tasks:  # a missing task file: said before a model loads (the engine's words and exit)
        if Path(task).is_absolute() and not Path(task).is_file():
            err.print(error_text({"kind": "data", "error": f"{task}: no such task file",
                                  "hint": "give a JSONL file of questions, `sample`, or an lm-eval task"}))
            return 1
    cmd = [sys.executable, "-m", "engine.evaluate", str(found.path.resolve()), "--tasks", *tasks]
    cmd += ["--base"] * args.base + (["--limit", str(args.limit)] if args.limit else [])
    if not args.json:
        named = [t for t in tasks if not Path(t).is_absolute() and t != "sample"]
        first = f"checking lm-eval's {', '.join(named)}, then " if named else ""
        err.print(f"[dim]{escape(first)}loading run {found.run_id}'s model{' and its base' if args.base else ''}"
                  "…[/dim]")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=engine_env(),
                          cwd=str(PROJECT_ROOT))
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        result = {"error": f"the evaluation failed (exit {proc.returncode})", "kind": "internal",
                  "hint": proc.stderr[-1500:]}
    if "error" in result:
        err.print(error_text(result))
        return 2 if result.get("kind") in REFUSALS else 1
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        show(result)
    return 0
