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
    p.add_argument("--gpu-memory", help="the memory budget, e.g. 24GiB or 80GB (default: the GPU NVML reports)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="plan for a GPU (default) or for this CPU's RAM")
    p.add_argument("--seq-len", type=int, help="tokens per example (default: training.max_seq_length)")
    p.add_argument("--dataset", "-d", help="a local JSON/JSONL dataset: plan for its longest example")
    p.add_argument("--json", action="store_true", help="print one JSON object (total_bytes, breakdown, fits)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.planning import PlanError, estimate, gpu_budget, ram_budget
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
    if budget is None and args.device == "cuda":
        budget, where = gpu_budget()
    elif budget is None:  # planning for this CPU: its RAM is the budget
        budget, where = ram_budget()
    from pathlib import Path

    from methods.config_paths import resolve_cli_path, resolve_config_paths

    config = resolve_config_paths(resolved.config, Path(args.config).parent)  # as `lf-tui train` reads it
    seq_len = args.seq_len
    if seq_len is None and args.dataset:
        from engine.recommend import longest_example_tokens

        longest = longest_example_tokens(str(resolve_cli_path(args.dataset)))
        if longest is None:
            console.err().print(f"[red]error:[/red] {args.dataset}: not a local JSON/JSONL dataset the planner can "
                                "read\n  hint: give a .json or .jsonl file, or --seq-len")
            return 2
        seq_len = min(config.training.max_seq_length, longest)
    try:
        plan, shape, source = estimate(config, args.device, resolve_cli_path(args.base_model), seq_len)
    except PlanError as exc:
        console.err().print(f"[red]error:[/red] {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return 2
    if args.json:
        print(json.dumps({"base_model": args.base_model or resolved.config.base_model, "model_config": source,
                          "method": resolved.config.method_name, **plan.to_json(budget)}, indent=2))
    else:
        show(plan, budget, where, args.base_model or resolved.config.base_model, source)
    return 0 if budget is None or plan.total <= budget else 1


def show(plan: MemoryPlan, budget: int | None, where: str, model: str, source: str) -> None:
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
    out.print(memory_text.setting_line(plan))
    out.print(f"model config: {source}")
    for note in plan.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
    out.print(memory_text.verdict(plan, budget, where))
