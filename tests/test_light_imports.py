"""Starting the CLI, validate-config or the TUI loads no torch/transformers (checked in fresh interpreters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "datasets", "accelerate")

PROBE = """
import sys, runpy
sys.argv = {argv!r}
try:
    {body}
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def _heavy_loaded(body: str, argv: list[str]) -> str:
    code = PROBE.format(argv=argv, body=body, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_validate_config_loads_no_torch() -> None:
    body = "from lf_tui.cli import main; main(sys.argv[1:])"
    assert _heavy_loaded(body, ["lf-tui", "validate-config", "-c", "methods/lora/examples/basic.json"]) == "HEAVY="


def test_light_packages_load_no_torch() -> None:
    body = ("import methods, engine, engine.protocol, engine.run_store, engine.launcher, lf_tui.cli, "
            "lf_tui.app, lf_tui.run_state; from methods.catalogue import get_catalogue; get_catalogue()")
    assert _heavy_loaded(body, ["x"]) == "HEAVY="
