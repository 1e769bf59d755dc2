"""`lf-tui fuse RUN RUN ... --weights 0.6,0.4`: one adapter from LoRA-family runs, saved as a new run, by an engine
subprocess (engine/fuse.py)."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from lf_tui.cli.options import add_runs_dir

COMBINATIONS = ("linear", "cat", "svd", "ties", "dare_linear", "dare_ties")  # engine.fuse's, without importing it
NEEDS_DENSITY = ("ties", "dare_linear", "dare_ties")


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fuse", help="combine LoRA runs on one base into a new adapter run (PEFT's weighted adapters)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids or folders (two or more, LoRA or QLoRA, one base)")
    p.add_argument("--weights", "-w", required=True,
                   help="one weight per run, comma-separated: 0.6,0.4 (a negative first one: --weights=-0.5,1)")
    p.add_argument("--combination", choices=COMBINATIONS, default="linear",
                   help="linear (default; equal ranks), cat (exact; rank: the sum), svd (rank: the largest), "
                        "ties, dare_linear, dare_ties (equal ranks, need --density)")
    p.add_argument("--density", type=float, help="the share of values ties/dare keep, in (0, 1]")
    p.add_argument("--seed", type=int, default=0, help="the seed of dare's random pruning (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the new run, its recipe)")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def parse_weights(text: str, n_runs: int) -> tuple[list[float], str | None]:
    """The weights, or why they are not usable (before any process starts)."""
    try:
        weights = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        return [], f"--weights {text!r} is not a comma-separated list of numbers (e.g. --weights 0.6,0.4)"
    if len(weights) != n_runs:
        return weights, f"--weights gives {len(weights)} weight(s) for {n_runs} run(s): give one per run"
    if not all(math.isfinite(w) for w in weights):
        return weights, "--weights must be finite numbers"
    return weights, None


def check(args: argparse.Namespace, weights_text: str) -> tuple[list[float], str | None]:
    if len(args.runs) < 2:
        return [], "fusion combines two runs or more: lf-tui fuse RUN RUN ... --weights W,W"
    weights, why = parse_weights(weights_text, len(args.runs))
    if why:
        return weights, why
    if args.combination in NEEDS_DENSITY and args.density is None:
        return weights, f"--combination {args.combination} prunes the adapters: give --density (e.g. 0.5)"
    if args.combination not in NEEDS_DENSITY and args.density is not None:
        return weights, f"--density applies to {', '.join(NEEDS_DENSITY)}, not {args.combination}"
    if args.density is not None and not 0 < args.density <= 1:
        return weights, f"--density {args.density:g} is not in (0, 1]"
    return weights, None


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    from rich.markup import escape

    from engine.launcher import PROJECT_ROOT, engine_env
    from engine.run_store import RunStore
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run

    weights, why = check(args, args.weights)
    if why:
        console.err().print(f"[red]error:[/red] {escape(why)}")
        return 2
    found = [resolve_run(args.runs_dir, name) for name in args.runs]
    if any(r is None for r in found):
        return 2
    root = RunStore(args.runs_dir).root  # absolute: the engine runs in the project's folder, not ours
    cmd = [sys.executable, "-m", "engine.fuse", *(str(r.path.resolve()) for r in found if r is not None),
           "--weights=" + ",".join(repr(w) for w in weights), "--combination", args.combination,
           "--seed", str(args.seed), "--runs-dir", str(root)]
    if args.density is not None:
        cmd += [f"--density={args.density!r}"]
    if not args.json:
        console.err().print(f"[dim]fusing {len(found)} runs ({escape(args.combination)})…[/dim]")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=engine_env(),
                          cwd=str(PROJECT_ROOT))
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        console.err().print(f"[red]error:[/red] the fusion failed:\n{escape(proc.stderr[-2000:])}")
        return 1
    if "error" in result:
        console.err().print(f"[red]{escape(result['kind'])} error:[/red] {escape(result['error'])}\n"
                            f"  hint: {escape(result.get('hint', ''))}")
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)
    return 0


def show(result: dict[str, Any]) -> None:
    from rich.markup import escape

    from lf_tui.cli import console
    from lf_tui.present.formatting import shown_path
    from lf_tui.present.run_text import deployment_fields, derived_line

    out = console.out()
    recipe = result["fusion"]
    out.print(f"fused run [bold]{escape(result['run_id'])}[/bold] ({result['method']} on "
              f"{escape(result['base_model'])}) in {escape(shown_path(result['path']))}:")
    out.print("  " + escape(derived_line({"derived_from": result["derived_from"], "fusion": recipe}) or ""))
    for label, value in deployment_fields(result.get("deployment")).items():
        out.print(f"  {label}: {escape(value)}")
    out.print(f"Ask it: lf-tui generate --run {escape(result['run_id'])} --prompt '...'; "
              f"export it: lf-tui export {escape(result['run_id'])} --out DIR")
