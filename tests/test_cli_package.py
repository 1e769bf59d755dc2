"""The CLI package: one module per command registers its parser and handler; parsing imports nothing heavy."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from lf_tui.cli import COMMAND_MODULES, build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_module_registers_a_handled_command() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {"edit", "validate-config", "methods", "train", "quick-train", "runs", "attach", "cancel",
                             "generate", "plan", "probe", "recommend", "export", "fuse", "preview-data", "eval", "control",
                             "report"}
    for name, sub in commands.items():
        handler = sub.get_default("handler")
        assert callable(handler), name
        assert handler.__module__.startswith("lf_tui.cli."), name
    for module in COMMAND_MODULES:
        assert importlib.import_module(f"lf_tui.cli.{module}").__doc__, module


def test_runs_dir_before_or_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["--runs-dir", "a", "runs"]).runs_dir == "a"
    assert parser.parse_args(["runs", "--runs-dir", "b"]).runs_dir == "b"
    assert parser.parse_args(["--runs-dir", "a", "runs", "--runs-dir", "b"]).runs_dir == "b"
    assert parser.parse_args(["runs"]).runs_dir is None and parser.parse_args([]).runs_dir is None
    assert parser.parse_args([]).handler.__name__ == "run_app"


def test_parsing_the_command_line_imports_no_ui_or_validation_library() -> None:
    code = ("import sys; from lf_tui.cli import build_parser; build_parser().parse_args(['runs']); "
            "print(sorted(m for m in ('rich', 'textual', 'pydantic', 'methods.catalogue', 'engine.run_store') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
