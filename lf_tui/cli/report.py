"""`lf-tui report RUN [--json]`: the run against its config's benchmarks block, threshold by threshold."""

from __future__ import annotations

import argparse

from lf_tui.cli.options import add_runs_dir


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="check a run against its config's benchmarks thresholds")
    p.add_argument("run", help="run id or folder")
    p.add_argument("--json", action="store_true", help="one JSON object: verdict and every check")
    add_runs_dir(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when nothing failed (some may not be measured), 1 when a threshold failed, 2 no such run."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from engine.benchmark_report import report
    from lf_tui.cli import console
    from lf_tui.cli.options import resolve_run
    from lf_tui.present.report_text import HEADERS, headline, problems, rows

    found = resolve_run(args.runs_dir, args.run)
    if found is None:
        return 2
    result = report(found)
    if args.json:
        print(json.dumps(result))
    else:
        out = console.out()
        out.print(escape(headline(result)))
        for line in problems(result):
            out.print(f"[yellow]{escape(line)}[/yellow]")
        if result["checks"]:
            table = Table()
            for header in HEADERS:
                table.add_column(header, overflow="fold")
            for row in rows(result):
                table.add_row(*map(escape, row))
            out.print(table)
    return 1 if result["verdict"] == "fail" else 0
