"""`lf-tui validate-config`: check a config file against its method (exit 0 valid, 1 invalid, 2 unusable)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from methods.report import Report


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate-config", help="validate a config file against its method")
    p.add_argument("--config", "-c", required=True, help="config JSON file")
    p.add_argument("--method", "-m", help="method the config is for (must agree with the file)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--write-upgraded", action="store_true", help="write the migrated config back (keeps a .bak)")
    p.add_argument("--lenient", action="store_true",
                   help="unknown keys are warnings, not errors (train, quick-train and the app refuse them)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lf_tui.cli import console
    from methods.config_file import ConfigInputError, read_config_file, write_upgraded
    from methods.validation import validate_config

    try:
        text, document = read_config_file(args.config)
    except ConfigInputError as exc:
        if args.json:
            print(json.dumps({"source": args.config, "valid": False, "unusable": str(exc)}))
        else:
            console.err().print(f"[red]error:[/red] {exc}")
        return 2
    resolved = validate_config(document, method=args.method, text=text, source=args.config,
                               lenient=args.lenient)
    report = resolved.report
    upgraded_to = None
    if report.migrated_from and args.write_upgraded and report.ok:
        upgraded_to = write_upgraded(args.config, resolved.upgraded_document(), report.migrated_from)
    if args.json:
        data = report.to_dict()
        data["backup"] = str(upgraded_to) if upgraded_to else None
        print(json.dumps(data, indent=2))
    else:
        print_report(console.out(), report, upgraded_to)
    return 0 if report.ok else 1


def print_report(out: Console, report: Report, backup: object = None) -> None:
    """Print a validation report for people."""
    if report.migrated_from:
        out.print(f"[cyan]migrated[/cyan] {report.source} from version {report.migrated_from}: "
                  + "; ".join(report.migration_notes or ["version only"]))
        if backup:
            out.print(f"[cyan]wrote[/cyan] the upgraded config to {report.source} (original kept as {backup})")
        else:
            out.print("  run again with --write-upgraded to save the upgraded file")
    for issue in report.errors:
        out.print(f"[red]error[/red]   {issue.render()}")
    for issue in report.warnings:
        out.print(f"[yellow]warning[/yellow] {issue.render()}")
    verdict = "[green]valid[/green]" if report.ok else f"[red]invalid[/red] ({counted(len(report.errors), 'error')})"
    out.print(f"{report.source}: {verdict} {report.method or ''} config, {counted(len(report.warnings), 'warning')}")


def counted(n: int, word: str) -> str:
    """`1 warning`, `2 warnings`, `0 warnings`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
