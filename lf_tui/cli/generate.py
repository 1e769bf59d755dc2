"""`lf-tui generate`: completions from trained runs (and their base), computed by one serving engine subprocess
(`python -m engine.serve`: the base loaded once, each run's trained weights on it); this process never loads torch."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate", help="completions from trained runs (and the base model), one process")
    p.add_argument("--run", action="append", required=True, help="run id or folder (repeat for several runs)")
    p.add_argument("--base", "--compare-base", dest="base", action="store_true",
                   help="also answer from the base model")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.0, help="0 (the default): greedy, reproducible")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0, help="the sampling seed (same seed, same text)")
    p.add_argument("--json", action="store_true",
                   help="a JSON list of answers with their timings (one run without --base: the completion "
                        "object of earlier versions)")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> str | None:
    if args.max_new_tokens < 1:
        return "--max-new-tokens must be at least 1"
    if args.temperature < 0:
        return "--temperature must be 0 (greedy) or more"
    if not 0 < args.top_p <= 1:
        return "--top-p must be in (0, 1]"
    return None


def serve(paths: list[str], request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Start `python -m engine.serve`, load `paths`, send `request`: (the events after ready, its stderr tail)."""
    import subprocess
    import sys

    from engine.launcher import PROJECT_ROOT, engine_env

    lines = [json.dumps({"type": "load", "runs": paths}), json.dumps(request), json.dumps({"type": "quit"})]
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.serve"], input="\n".join(lines) + "\n",
                              capture_output=True, text=True, env=engine_env(), cwd=str(PROJECT_ROOT))
    except OSError as exc:
        return [], f"cannot start the serving engine: {exc}"
    events: list[dict[str, Any]] = []
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, proc.stderr[-2000:]


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value * 1000:.1f}ms" if value < 1 else f"{value:.2f}s"


def run(args: argparse.Namespace) -> int:
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run

    out = console.out()
    problem = _check(args)
    if problem:
        out.print(f"[red]error:[/red] {problem}")
        return 2
    found = []
    for ident in args.run:
        run_dir = resolve_run(args.runs_dir, ident)
        if run_dir is None:
            return 2
        found.append(run_dir)
    targets = list(dict.fromkeys(r.run_id for r in found)) + (["base"] if args.base else [])
    request = {"type": "generate", "prompt": args.prompt, "targets": targets, "max_new_tokens": args.max_new_tokens,
               "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed}
    events, stderr = serve([str(r.path.resolve()) for r in found], request)
    if not any(e.get("type") == "ready" for e in events):
        out.print(f"[red]error:[/red] the serving engine did not start:\n{stderr}")
        return 1
    load_errors = {e.get("run"): e for e in events if e.get("type") == "error" and e.get("run")}
    answers = [e for e in events if e.get("type") == "answer"]
    for answer in answers:  # a run that failed to load answers with the reason it did not load
        if answer.get("error") and answer.get("target") in load_errors:
            failure = load_errors[answer["target"]]
            answer.update(error=failure.get("error"), kind=failure.get("kind"), hint=failure.get("hint", ""))
    if not answers:
        out.print(f"[red]error:[/red] generation failed:\n{stderr}")
        return 1
    failed = [a for a in answers if a.get("error")]
    if args.json:
        if len(found) == 1 and not args.base:  # the single-run object earlier versions printed
            only = answers[0]
            if only.get("error"):
                print(json.dumps({"error": only["error"], "kind": only.get("kind"), "hint": only.get("hint", "")}))
            else:
                print(json.dumps({"prompt": args.prompt, "completion": only["text"], "base_completion": None}))
        else:
            print(json.dumps([{k: v for k, v in a.items() if k != "type"} for a in answers]))
        return 1 if failed else 0
    _print_table(out, args.prompt, answers)
    return 1 if failed else 0


def visible(text: str) -> str:
    """Text safe to put on a terminal: control and other non-printable characters (a backspace, a terminal escape)
    written as escapes (\\x08), line breaks and tabs kept."""
    return "".join(c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii") for c in text)


def _print_table(out: Any, prompt: str, answers: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out.print(f"[bold]prompt:[/bold] {escape(visible(prompt))}")
    table = Table(show_lines=True)
    for column in ("target", "answer", "first token", "tokens/s", "swap"):
        table.add_column(column, overflow="fold")
    for a in answers:
        label = str(a.get("target"))
        if a.get("separate_model"):
            label += " (own model)"
        if a.get("error"):
            text = f"[red]{a.get('kind')} error:[/red] {a['error']}" + (f"\nhint: {a['hint']}" if a.get("hint") else "")
            table.add_row(label, text, "-", "-", "-")
            continue
        rate = a.get("tokens_per_s")
        table.add_row(escape(label), escape(visible(str(a.get("text", "")))), _seconds(a.get("first_token_s")),
                      f"{rate:.1f}" if isinstance(rate, (int, float)) else "-", _seconds(a.get("swap_s")))
    out.print(table)
