"""`lf-tui plan`: a config's peak training memory on its model, by part, and whether it fits (nothing loads)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from methods.memory_plan import MemoryPlan


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="estimate a config's peak training memory (before anything loads)")
    p.add_argument("--config", "-c", required=True, help="config JSON file")
    p.add_argument("--base-model", help="plan for this model instead of the config's base_model")
    p.add_argument("--gpu-memory", help="plan for a GPU of this size, e.g. 24GiB or 80GB (default: $LF_TUI_GPU_MEMORY, "
                   "else the GPU NVML reports; with neither, whether it fits is unknown)")
    p.add_argument("--device", choices=("cuda", "cpu"),
                   help="plan for a GPU or for this CPU's RAM (default: the config's hardware.device; when that is "
                   "auto, this machine: a GPU of --gpu-memory or $LF_TUI_GPU_MEMORY, its GPU, else its CPU)")
    p.add_argument("--seq-len", type=int, help="tokens per example (default: training.max_seq_length)")
    p.add_argument("--dataset", "-d", help="a local JSON/JSONL dataset: plan for its longest example")
    p.add_argument("--json", action="store_true", help="print one JSON object (total_bytes, breakdown, fits)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.planning import PlanError, estimate, plan_target
    from lf_tui.cli import console
    from lf_tui.cli.validate import print_report
    from methods.config_file import ConfigInputError, read_config_file
    from methods.memory_plan import parse_size
    from methods.validation import validate_config

    try:
        text, document = read_config_file(args.config)
        budget, where = (parse_size(args.gpu_memory), "--gpu-memory") if args.gpu_memory else (None, "")
    except (ConfigInputError, ValueError) as exc:
        console.err().print(f"[red]error:[/red] {exc}")
        return 2
    resolved = validate_config(document, text=text, source=args.config)
    if resolved.config is None:  # cannot plan: 2 (1 means "does not fit")
        print_report(console.err(), resolved.report)
        return 2
    if (args.seq_len is not None and args.seq_len < 1) or (budget is not None and budget < 1):
        console.err().print("[red]error:[/red] --seq-len and --gpu-memory must be positive")
        return 2
    try:
        device, budget, where, why = plan_target(resolved.config.hardware.device, args.device, budget, where)
    except PlanError as exc:
        console.err().print(f"[red]error:[/red] {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return 2
    from pathlib import Path

    from methods.config_paths import resolve_cli_path, resolve_config_paths

    config = resolve_config_paths(resolved.config, Path(args.config).parent)  # as `lf-tui train` reads it
    seq_len, seq_source = args.seq_len, "--seq-len"
    if seq_len is None:
        from engine.recommend import planned_seq_len

        try:
            seq_len, seq_source = planned_seq_len(config.training.max_seq_length, resolve_cli_path(args.dataset))
        except PlanError:
            console.err().print(f"[red]error:[/red] {args.dataset}: not a local JSON/JSONL dataset the planner can "
                                "read\n  hint: give a .json or .jsonl file, or --seq-len")
            return 2
    try:
        plan, shape, source = estimate(config, device, resolve_cli_path(args.base_model), seq_len)
    except PlanError as exc:
        console.err().print(f"[red]error:[/red] {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return 2
    if args.json:
        from lf_tui.present import memory_text

        out = {"base_model": args.base_model or resolved.config.base_model, "model_config": source,
               "method": resolved.config.method_name, **plan.to_json(budget), "budget_source": where,
               "device_source": why, "covers": memory_text.covers(plan), "seq_len_source": seq_source}
        if budget is None:
            out.update(budget_bytes=None, fits=None, fits_unknown=memory_text.NO_BUDGET)
        print(json.dumps(out, indent=2))
    else:
        show(plan, budget, where, args.base_model or resolved.config.base_model, source, seq_source, why)
    return 0 if budget is None or plan.total <= budget else 1


def show(plan: MemoryPlan, budget: int | None, where: str, model: str, source: str, seq_source: str,
         why: str = "") -> None:
    from rich.table import Table

    from lf_tui.cli import console
    from lf_tui.present import memory_text

    out = console.out()
    table = Table(title=f"Peak training memory: {model}", show_header=True)
    for col in ("part", "size", "share"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for row in memory_text.breakdown_rows(plan):
        table.add_row(*row)
    out.print(table)
    out.print(f"assumes: {memory_text.setting_line(plan, why)}\ncounts: {memory_text.covers(plan)}\n"
              f"sequence length: {seq_source}")
    out.print(f"model config: {source}")
    for note in plan.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
    out.print(memory_text.verdict(plan, budget, where))
