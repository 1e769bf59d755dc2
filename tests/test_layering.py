"""The layering contracts hold: lint-imports passes, the UI names only the light engine modules, lf_common is stdlib-only."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the run's light modules, and the memory planner's (no torch: they read config.json files and do arithmetic)
UI_MAY_IMPORT = {"engine.protocol", "engine.run_store", "engine.launcher", "engine.planning", "engine.recommend",
                 "engine.serve_client", "engine.benchmark_report", "engine.control_requests", "engine.data_check",
                 "engine.errors", "engine.run_names"}


def _imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a file, `from a import b` giving a.b too (b may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def test_lint_imports_passes() -> None:
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        pytest.skip(f"import-linter is not installed next to {sys.executable} (pip install -e '.[dev]')")
    proc = subprocess.run([str(script), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_ui_names_only_the_light_engine_modules() -> None:
    """lf_tui imports the light engine modules only (launcher re-exports the rest of the run's)."""
    bad = []
    for path in sorted((ROOT / "lf_tui").rglob("*.py")):
        for line, module in _imported(path):
            top = module.split(".")[:2]
            if top[0] != "engine":
                continue
            if len(top) == 1:  # `import engine` (its docstring only), or `from engine import x`: checked as engine.x
                continue
            name = ".".join(top)
            if name not in UI_MAY_IMPORT:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert sorted(set(bad)) == [], "lf_tui must import only " + ", ".join(sorted(UI_MAY_IMPORT))


def test_lf_common_imports_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "lf_common"}
    bad = [f"{path.relative_to(ROOT)}:{line}: {module}" for path in sorted((ROOT / "lf_common").rglob("*.py"))
           for line, module in _imported(path) if module.split(".")[0] not in allowed]
    assert bad == []
