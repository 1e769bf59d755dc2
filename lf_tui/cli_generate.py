"""`lf-tui generate`: runs the engine's generate in a subprocess (this process never imports torch)."""

from __future__ import annotations

import argparse
import json
import subprocess

from engine.launcher import PROJECT_ROOT, engine_env
from lf_tui import consoles


def cmd_generate(args: argparse.Namespace) -> int:
    console = consoles.out()
    run = consoles.resolve_run(args.runs_dir, args.run)
    if run is None:
        return 2
    import sys

    cmd = [sys.executable, "-m", "engine", "generate", str(run.path.resolve()), "--prompt", args.prompt,
           "--max-new-tokens", str(args.max_new_tokens)]
    if args.compare_base:
        cmd.append("--compare-base")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=engine_env(),
                          cwd=str(PROJECT_ROOT))
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        console.print(f"[red]error:[/red] generation failed:\n{proc.stderr[-2000:]}")
        return 1
    if "error" in result:
        console.print(f"[red]{result['kind']} error:[/red] {result['error']}\n  hint: {result.get('hint', '')}")
        return 1
    if args.json:
        print(json.dumps(result))
        return 0
    console.print(f"[bold]prompt:[/bold] {result['prompt']}")
    console.print(f"[bold green]trained:[/bold green] {result['completion']}")
    if result.get("base_completion") is not None:
        console.print(f"[bold]base:[/bold]    {result['base_completion']}")
    return 0
