"""`lf-tui export RUN --out DIR`: a run's model as a folder others load, written by an engine subprocess."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lf_tui.cli.options import add_runs_dir

DTYPES = ("bf16", "fp16", "fp32")
MANIFEST = "lf_tui_export.json"  # engine.export.MANIFEST: what marks a folder as a previous export


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="export a run's adapter, or the merged model (--merged), to a folder")
    p.add_argument("run", help="run id or folder")
    p.add_argument("--out", "-o", required=True, help="folder to write (relative to the working directory)")
    p.add_argument("--merged", action="store_true",
                   help="fold the trained weights into the base weights: a plain transformers model")
    p.add_argument("--dtype", choices=DTYPES, help="the merged model's dtype (default: the base model's own)")
    p.add_argument("--qlora-base", choices=("auto", "4bit", "full"),
                   help="QLoRA with --merged: into the 4-bit base de-quantised, the weights it trained on, so the "
                        "merged model answers as the trained one (auto, the default; 4bit insists), or into the "
                        "full-precision base (full)")
    p.add_argument("--force", action="store_true", help="replace a previous export in --out")
    p.add_argument("--json", action="store_true", help="print one JSON object (files, bytes, ...)")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    from rich.markup import escape

    from engine.launcher import PROJECT_ROOT, engine_env
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run

    if args.dtype and not args.merged:
        console.err().print("[red]error:[/red] --dtype applies to --merged exports (an adapter-only export copies "
                            "the weights as trained)")
        return 2
    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    out = Path(args.out).expanduser().absolute()  # the engine runs in the project's folder, not ours
    refusal = out_refusal(out, args.force)
    if refusal is not None:  # before anything loads: the engine's own refusal (engine.export.check_out)
        console.err().print(f"[red]export error:[/red] {escape(refusal[0])}\n  hint: {escape(refusal[1])}")
        return 1
    cmd = [sys.executable, "-m", "engine.export", str(found.path.resolve()), "--out", str(out)]
    cmd += ["--merged"] * args.merged + ["--force"] * args.force + (["--dtype", args.dtype] if args.dtype else [])
    cmd += ["--qlora-base", args.qlora_base] if args.qlora_base else []
    if not args.json:
        what = "merging the trained weights into the base model" if args.merged else "copying the trained weights"
        console.err().print(f"[dim]{what} of run {escape(found.run_id)}…[/dim]")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=engine_env(),
                          cwd=str(PROJECT_ROOT))
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        console.err().print(f"[red]error:[/red] the export failed:\n{escape(proc.stderr[-2000:])}")
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


def out_refusal(out: Path, force: bool) -> tuple[str, str] | None:
    """(message, hint) when the export into `out` would be refused: a file, a non-empty folder without --force, or
    with --force one that holds no previous export; the same words as engine.export.check_out."""
    if out.exists() and not out.is_dir():
        return f"{out} exists and is not a folder", "choose another --out"
    if out.is_dir() and any(out.iterdir()):
        if not force:
            return (f"{out} exists and is not empty",
                    "choose another --out, or pass --force to replace a previous export there")
        if not (out / MANIFEST).is_file():
            return (f"{out} is not empty and holds no lf-tui export ({MANIFEST}): --force replaces only a previous "
                    "export", "choose another --out, or empty the folder yourself")
    return None


def show(result: dict[str, Any]) -> None:
    from rich.markup import escape

    from lf_tui.cli import console
    from lf_tui.present.memory_text import size

    out = console.out()
    what = f"merged model ({result['dtype']})" if result["merged"] else f"{result['weights']} weights as trained"
    out.print(f"exported run {escape(result['run_id'])} ({result['method']}, {what}) to "
              f"[bold]{escape(result['out'])}[/bold]:")
    for item in result["files"]:
        out.print(f"  {size(item['bytes']):>10}  {escape(item['name'])}")
    out.print(f"  {size(result['total_bytes']):>10}  in all")
    if result.get("merge_path"):
        how = "shard by shard" if result["merge_path"] == "streaming" else "in memory"
        out.print(f"merged {how} ({result['merge_path']}): {escape(result.get('merge_path_reason') or '')}")
    if result.get("merge_refusal"):
        out.print(f"not merged: {escape(result['merge_refusal'])}")
    out.print("README.md says how to load it.")
