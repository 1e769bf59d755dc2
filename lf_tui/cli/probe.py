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
    """The planner's estimate for what was measured (its device, precision, batch and sequence length), the part of
    it the measurement sees (on a GPU the allocator's peak leaves out the CUDA context and the allocator's slack, so
    the plan's runtime overhead is left out too; on a CPU both leave the runtime out), and the planner's error
    against it; with a note instead of an error figure when they cannot be compared."""
    from pathlib import Path

    from engine.planning import PlanError, estimate
    from lf_tui.present.memory_text import covers
    from methods.config_file import read_config_file
    from methods.config_paths import resolve_config_paths
    from methods.validation import validate_config

    text, document = read_config_file(config_path)
    cfg = validate_config(document, text=text).config
    if cfg is None:
        return {}
    cfg = resolve_config_paths(cfg, Path(config_path).parent)
    device = str(measured["device"])
    kind: Literal["cuda", "cpu"] | None = "cuda" if device.startswith("cuda") else "cpu" if device == "cpu" else None
    if kind is None:
        return {"planner_error": None, "planner_error_note": f"the planner sizes cuda and cpu runs, not {device}"}
    batch = int(measured["batch_size"])  # type: ignore[call-overload]
    if batch != cfg.training.batch_size:
        cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"batch_size": batch})})
    try:
        plan = estimate(cfg, kind, seq_len=int(measured["seq_len"]),  # type: ignore[call-overload]
                        precision=str(measured.get("precision")))[0]
    except PlanError as exc:
        return {"planner_error": None, "planner_error_note": f"no plan: {exc.message}"}
    compared = plan.total - plan.parts.get("runtime overhead", 0)
    out: dict[str, object] = {"planned_bytes": plan.total, "planned_setting": vars(plan.setting),
                              "planned_covers": covers(plan), "compared_bytes": compared}
    if measured.get("peak_bytes") is None:  # the configured batch ran out of memory (--find-batch went on)
        return {**out, "planner_error": None, "planner_error_note": "the configured batch ran out of memory"}
    peak = int(measured["peak_bytes"])  # type: ignore[call-overload]
    if peak <= 0:
        return {**out, "planner_error": None, "planner_error_note": "the measured growth is zero"}
    return {**out, "planner_error": round((compared - peak) / peak, 4)}


def show(result: dict[str, object]) -> None:
    from lf_tui.cli import console
    from lf_tui.present.memory_text import size

    out = console.out()
    if result.get("out_of_memory"):
        out.print(f"[red]the configured batch ({result['batch_size']}) runs out of memory[/red]")
        if result.get("planned_bytes"):
            out.print(f"planned peak:  {size(int(result['planned_bytes']))}  ({_planned_text(result)})")  # type: ignore[call-overload]
    else:
        show_measured(result)
    found = result.get("find_batch")
    if isinstance(found, dict):
        out.print(f"largest batch that fits: {found['max_batch_size']}"
                  + (" (the search stopped at its cap)" if found.get("capped") else ""))


def _planned_text(result: dict[str, object]) -> str:
    """`cuda bf16, batch 4 x 512 tokens; training on the GPU, ...`: what the plan beside a measurement assumes."""
    s = result.get("planned_setting")
    if not isinstance(s, dict):
        return ""
    return f"{s['device']} {s['precision']}, batch {s['batch_size']} x {s['seq_len']} tokens; {result['planned_covers']}"


def show_measured(result: dict[str, object]) -> None:
    from lf_tui.cli import console
    from lf_tui.present.memory_text import size

    out = console.out()
    out.print(f"measured peak: [bold]{size(int(result['peak_bytes']))}[/bold]  ({result['device']} "  # type: ignore[call-overload]
              f"{result['precision']}, batch {result['batch_size']} x {result['seq_len']} tokens, "
              f"{result['steps']} steps, {result['seconds_per_step']} s/step)")
    if result.get("measures"):
        out.print(f"  measures: {result['measures']}")
    if not result.get("planned_bytes"):
        if result.get("planner_error_note"):
            out.print(f"planned peak:  none ({result['planner_error_note']})")
        return
    planned, compared = int(result["planned_bytes"]), int(result.get("compared_bytes") or 0)  # type: ignore[call-overload]
    out.print(f"planned peak:  {size(planned)}  ({_planned_text(result)})")
    error = result.get("planner_error")
    against = (f"{size(compared)} without its runtime overhead, as the allocator counts" if compared != planned
               else "the same parts as the measurement")
    if isinstance(error, (int, float)):
        out.print(f"  compared: {against}: planner error {100 * error:+.0f}%")
    else:
        out.print(f"  compared: no error figure ({result.get('planner_error_note', 'not comparable')})")
