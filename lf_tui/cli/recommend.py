"""`lf-tui recommend`: the methods and settings that fit a model in a memory budget, ranked for a goal."""

from __future__ import annotations

import argparse
import json


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recommend", help="the methods and settings that fit a model in your GPU, ranked")
    p.add_argument("--base-model", required=True, help="hub id, local model folder or builtin:tiny-llama")
    p.add_argument("--gpu-memory", help="plan for a GPU of this size, e.g. 24GiB (default: $LF_TUI_GPU_MEMORY, else "
                   "the GPU NVML reports, else this machine's CPU and RAM)")
    p.add_argument("--dataset", "-d", help="a local JSON/JSONL dataset: plan for its longest example")
    p.add_argument("--goal", choices=("quality", "speed", "memory"), default="quality", help="what to rank by")
    p.add_argument("--top", type=int, default=10, help="how many to show, best first (default 10)")
    p.add_argument("--all", action="store_true", help="show every candidate that fits (overrides --top)")
    p.add_argument("--json", action="store_true", help="print the ranked list as JSON (with each config)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.planning import PlanError, machine_budget
    from engine.recommend import recommend
    from lf_tui.cli import console
    from methods.memory_plan import Device, parse_size

    if args.top < 1:
        console.err().print(f"[red]error:[/red] --top {args.top}: give a positive count, or --all to show every "
                            "candidate")
        return 2
    try:
        device: Device = "cuda"
        if args.gpu_memory:
            budget, where = parse_size(args.gpu_memory), "--gpu-memory"
        else:  # what the editor and lf-tui plan assume: $LF_TUI_GPU_MEMORY, this machine's GPU, else its RAM
            device, budget, where = machine_budget()
        from methods.config_paths import resolve_cli_path

        found, notes = recommend(args.base_model, budget, args.goal, device, dataset=resolve_cli_path(args.dataset))
    except ValueError as exc:
        console.err().print(f"[red]error:[/red] {exc}")
        return 2
    except PlanError as exc:
        console.err().print(f"[red]error:[/red] {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        return 2
    shown = found if args.all else found[:max(1, args.top)]
    if args.json:
        print(json.dumps({"base_model": args.base_model, "budget_bytes": budget, "device": device,
                          "budget_source": where, "goal": args.goal, "notes": notes,
                          "total_candidates": len(found), "shown": len(shown),
                          "candidates": [{"method": c.method, "settings": c.settings, "total_bytes": c.plan.total,
                                          "relative_speed": c.speed, "quality_pct": c.quality,
                                          "config": c.document} for c in shown]}, indent=2))
        return 0 if found else 1
    show(shown, budget, f"{where}, {device}", args, notes, len(found))
    return 0 if found else 1


def show(shown: list, budget: int, where: str, args: argparse.Namespace, notes: list[str], total: int) -> None:
    from rich.table import Table

    from lf_tui.cli import console
    from lf_tui.present import memory_text

    out = console.out()
    if not shown:
        out.print(f"nothing fits {args.base_model} in {memory_text.size(budget)}: even the smallest setting needs "
                  "more (try a smaller model, or more GPU memory)")
        return
    table = Table(title=f"What fits {args.base_model} in {memory_text.size(budget)} ({where}), best for {args.goal}")
    for col in memory_text.RECOMMEND_HEADERS:
        table.add_column(col)
    for row in memory_text.recommend_rows(shown):
        table.add_row(*row)
    out.print(table)
    out.print(memory_text.recommend_count_line(len(shown), total, args.goal))
    out.print(f"[dim]{memory_text.recommend_assumes(shown[0].plan)}[/dim]")
    for note in notes:
        out.print(f"[dim]{note}[/dim]")
    out.print("[dim]lf-tui recommend --json prints each candidate's config; the app's What fits screen (F3) opens "
              "one in the editor[/dim]")
