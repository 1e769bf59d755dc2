"""`lf-tui generate`: a completion from a trained run, computed in an engine subprocess (this one never loads torch)."""

from __future__ import annotations

import argparse
import json

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="greedy completion from a trained run")
    p.add_argument("--run", required=True, help="run id or folder")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--compare-base", action="store_true", help="also print the base model's completion")
    p.add_argument("--json", action="store_true")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    from engine.launcher import PROJECT_ROOT, engine_env
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run

    out = console.out()
    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    cmd = [sys.executable, "-m", "engine", "generate", str(found.path.resolve()), "--prompt", args.prompt,
           "--max-new-tokens", str(args.max_new_tokens)]
    if args.compare_base:
        cmd.append("--compare-base")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=engine_env(),
                          cwd=str(PROJECT_ROOT))
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        out.print(f"[red]error:[/red] generation failed:\n{proc.stderr[-2000:]}")
        return 1
    if "error" in result:
        out.print(f"[red]{result['kind']} error:[/red] {result['error']}\n  hint: {result.get('hint', '')}")
        return 1
    if args.json:
        print(json.dumps(result))
        return 0
    out.print(f"[bold]prompt:[/bold] {result['prompt']}")
    out.print(f"[bold green]trained:[/bold green] {result['completion']}")
    if result.get("base_completion") is not None:
        out.print(f"[bold]base:[/bold]    {result['base_completion']}")
    return 0
