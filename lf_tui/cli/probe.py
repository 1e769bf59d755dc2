"""`lf-tui probe`: measure a config's peak training memory in an engine subprocess, beside the planner's estimate."""

from __future__ import annotations

import argparse
import json
from typing import Literal


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("probe", help="measure a config's peak training memory (a few real optimizer steps)")
    p.add_argument("--config", "-c", required=True, help="config JSON file")
    p.add_argument("--dataset", "-d", help="measure at this dataset's longest example (default: max_seq_length)")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps to run (default 3)")
    p.add_argument("--find-batch", action="store_true", help="on a GPU: find the largest batch that fits")
    p.add_argument("--json", action="store_true", help="print one JSON object (peak_bytes, planned_bytes, ...)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys
    from pathlib import Path

    from engine.launcher import PROJECT_ROOT, engine_env
    from lf_tui.cli import console
    from methods.config_paths import resolve_cli_path

    config = Path(args.config).absolute()
    if not config.is_file():
        console.err().print(f"[red]error:[/red] {args.config}: no such file")
        return 2
    cmd = [sys.executable, "-m", "engine", "probe", str(config), "--steps", str(max(1, args.steps))]
    if args.dataset:
        cmd += ["--dataset", str(resolve_cli_path(args.dataset))]
    if args.find_batch:
        cmd.append("--find-batch")
    if not args.json:
        console.err().print("[dim]loading the model and training a few steps to measure the peak…[/dim]")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=engine_env(),
                          cwd=str(PROJECT_ROOT))
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        console.err().print(f"[red]error:[/red] the probe failed:\n{proc.stderr[-2000:]}")
        return 1
    if "error" in result:
        hint = f"\n  hint: {result['hint']}" if result.get("hint") else ""
        console.err().print(f"[red]{result['kind']} error:[/red] {result['error']}{hint}")
        return 1
    result.update(planned(args.config, result))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)
    return 0


def planned(config_path: str, measured: dict[str, object]) -> dict[str, object]:
    """The planner's estimate for what was measured (same device, batch and sequence length), and its error."""
    from pathlib import Path

    from engine.planning import PlanError, estimate
    from methods.config_file import read_config_file
    from methods.config_paths import resolve_config_paths
    from methods.validation import validate_config

    text, document = read_config_file(config_path)
    cfg = validate_config(document, text=text).config
    if cfg is None:
        return {}
    cfg = resolve_config_paths(cfg, Path(config_path).parent)
    device: Literal["cuda", "cpu"] = "cuda" if str(measured["device"]).startswith("cuda") else "cpu"
    try:
        plan = estimate(cfg, device, seq_len=int(measured["seq_len"]))[0]  # type: ignore[call-overload]
    except PlanError:
        return {}
    if measured.get("peak_bytes") is None:  # the configured batch ran out of memory (--find-batch went on)
        return {"planned_bytes": plan.total, "planner_error": None}
    peak = int(measured["peak_bytes"])  # type: ignore[call-overload]
    return {"planned_bytes": plan.total, "planner_error": round((plan.total - peak) / peak, 4) if peak else None}


def show(result: dict[str, object]) -> None:
    from lf_tui.cli import console
    from lf_tui.present.memory_text import size

    out = console.out()
    if result.get("out_of_memory"):
        out.print(f"[red]the configured batch ({result['batch_size']}) runs out of memory[/red]")
        if result.get("planned_bytes"):
            out.print(f"planned peak:  {size(int(result['planned_bytes']))}")  # type: ignore[call-overload]
    else:
        show_measured(result)
    found = result.get("find_batch")
    if isinstance(found, dict):
        out.print(f"largest batch that fits: {found['max_batch_size']}"
                  + (" (the search stopped at its cap)" if found.get("capped") else ""))


def show_measured(result: dict[str, object]) -> None:
    from lf_tui.cli import console
    from lf_tui.present.memory_text import size

    out = console.out()
    out.print(f"measured peak: [bold]{size(int(result['peak_bytes']))}[/bold]  ({result['device']} "  # type: ignore[call-overload]
              f"{result['precision']}, batch {result['batch_size']} x {result['seq_len']} tokens, "
              f"{result['steps']} steps, {result['seconds_per_step']} s/step)")
    if result.get("planned_bytes"):
        error = float(result["planner_error"] or 0)  # type: ignore[arg-type]
        out.print(f"planned peak:  {size(int(result['planned_bytes']))}  (planner error {100 * error:+.0f}%)")  # type: ignore[call-overload]
