"""`lf-tui quick-train`: train a method's defaults (on the built-in model and sample data unless told otherwise)."""

from __future__ import annotations

import argparse

from lf_tui.cli.options import add_training_inputs


def register(root: argparse.ArgumentParser, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("quick-train", help="train with a method's defaults")
    p.add_argument("--method", "-m", required=True, help="method")
    p.add_argument("--base-model", "-b", default="builtin:tiny-llama", help="hub id, folder or builtin:tiny-llama")
    add_training_inputs(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from engine.run_store import RunStore
    from lf_tui.cli import console
    from lf_tui.cli.train import create_and_start
    from lf_tui.run_setup import config_for_quick_train

    store = RunStore(args.runs_dir)
    refusal = store.writable_refusal()  # before any work
    if refusal:
        console.err().print(f"[red]error:[/red] {escape(refusal)}")
        return 2
    resolved, note = config_for_quick_train(args.method, args.base_model, max_steps=args.max_steps)
    if note:
        console.err().print(f"[dim]{note}[/dim]")
    return create_and_start(store, resolved, args)
