"""`lf-tui validate-config` and `lf-tui methods`."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from lf_tui import consoles
from methods.catalogue import get_catalogue
from methods.config_file import ConfigInputError, read_config_file, write_upgraded
from methods.report import Report
from methods.validation import validate_config

TICK = {True: "✅", False: "❌"}
READY = {"yes": "✅", "partial": "⚠️", "no": "❌"}


def cmd_validate_config(args: argparse.Namespace) -> int:
    console = consoles.out()
    try:
        text, document = read_config_file(args.config)
    except ConfigInputError as exc:
        if args.json:
            print(json.dumps({"source": args.config, "valid": False, "unusable": str(exc)}))
        else:
            consoles.err().print(f"[red]error:[/red] {exc}")
        return 2
    resolved = validate_config(document, method=args.method, text=text, source=args.config)
    report = resolved.report
    upgraded_to = None
    if report.migrated_from and args.write_upgraded and report.ok:
        upgraded_to = write_upgraded(args.config, resolved.upgraded_document(), report.migrated_from)
    if args.json:
        data = report.to_dict()
        data["backup"] = str(upgraded_to) if upgraded_to else None
        print(json.dumps(data, indent=2))
    else:
        print_report(console, report, upgraded_to)
    return 0 if report.ok else 1


def print_report(console: Console, report: Report, backup: object = None) -> None:
    """Print a validation report for people."""
    if report.migrated_from:
        console.print(f"[cyan]migrated[/cyan] {report.source} from version {report.migrated_from}: "
                      + "; ".join(report.migration_notes or ["version only"]))
        if backup:
            console.print(f"[cyan]wrote[/cyan] the upgraded config to {report.source} (original kept as {backup})")
        else:
            console.print("  run again with --write-upgraded to save the upgraded file")
    for issue in report.errors:
        console.print(f"[red]error[/red]   {issue.render()}")
    for issue in report.warnings:
        console.print(f"[yellow]warning[/yellow] {issue.render()}")
    verdict = "[green]valid[/green]" if report.ok else f"[red]invalid[/red] ({len(report.errors)} errors)"
    console.print(f"{report.source}: {verdict} {report.method or ''} config, {len(report.warnings)} warnings")


def matrix_table() -> Table:
    catalogue = get_catalogue()
    methods = list(catalogue)
    table = Table(title="Quick selection matrix")
    table.add_column("Criteria", style="bold")
    for m in methods:
        table.add_column(m.info.title)
    rows = [
        ("GPU Memory (7B model)", lambda r: r.gpu_memory_7b),
        ("Training Speed", lambda r: r.training_speed),
        ("Quality vs Full FT", lambda r: r.quality_vs_full),
        ("Multiple Tasks", lambda r: TICK[r.multiple_tasks]),
        ("Hot Swapping", lambda r: TICK[r.hot_swapping]),
        ("Production Ready", lambda r: READY[r.production_ready]),
    ]
    for label, get in rows:
        table.add_row(label, *[get(m.info.matrix) for m in methods])
    return table


def use_case_table() -> Table:
    table = Table(title="Use case recommendations")
    for col in ("Use Case", "Primary Method", "Secondary Option", "Configuration Notes"):
        table.add_column(col)
    for row in get_catalogue().use_case_table():
        table.add_row(*row)
    return table


def cmd_methods(args: argparse.Namespace) -> int:
    catalogue = get_catalogue()
    if args.json:
        out = {
            "methods": [
                {"name": m.name, "title": m.info.title, "summary": m.info.summary, "matrix": vars(m.info.matrix)}
                for m in catalogue
            ],
            "use_cases": [dict(zip(("use_case", "primary", "secondary", "notes"), r)) for r in catalogue.use_case_table()],
        }
        print(json.dumps(out, indent=2))
        return 0
    console = consoles.out()
    console.print(matrix_table())
    console.print(use_case_table())
    for m in catalogue:
        console.print(f"[bold]{m.name}[/bold]: {m.info.summary}")
    return 0
