"""The methods matrix's memory row is the planner's, for Llama-2-7B's sizes or the model the user picks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lf_tui.present.memory_text import size
from lf_tui.present.methods_table import MATRIX_HEADERS, matrix_rows
from methods.memory_plan import GiB, parse_size
from tests.test_memory_plan import GPT2
from tests.tui_helpers import wait_for

LF_TUI = Path(sys.executable).with_name("lf-tui")


def _memory(rows: list[tuple[str, list[str]]]) -> dict[str, int]:
    column = MATRIX_HEADERS.index("GPU Memory (Llama-2-7B)")
    return {name: parse_size(cells[column].replace(" ", "")) for name, cells in rows}


def test_the_memory_row_is_planned_not_copied() -> None:
    memory = _memory(matrix_rows())
    assert memory["qlora"] < memory["lora"] < memory["full_finetune"]
    assert 100 * GiB < memory["full_finetune"] < 160 * GiB  # 16 bytes a parameter and more, for 6.7B
    assert 3 * GiB < memory["qlora"] < 12 * GiB


def test_another_model_changes_the_row(tmp_path: Path) -> None:
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps(GPT2))
    small = _memory(matrix_rows(str(tmp_path / "gpt2")))
    assert all(small[name] < big for name, big in _memory(matrix_rows()).items())
    proc = subprocess.run([str(LF_TUI), "methods", "--base-model", "gpt2", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    planned = {m["name"]: m["planned_memory"] for m in json.loads(proc.stdout)["methods"]}
    assert planned["lora"] == size(small["lora"])  # a relative folder, from the working directory


async def test_m_on_the_methods_screen_plans_for_the_chosen_model(tmp_path: Path) -> None:
    from textual.widgets import DataTable, Input

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.methods_screen import MethodsScreen
    from lf_tui.widgets.dialogs import PromptScreen

    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps(GPT2))
    app = LfTuiApp()
    async with app.run_test(size=(150, 46)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen), what="methods")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen), what="the model prompt")
        app.screen.query_one(Input).value = str(tmp_path / "gpt2")
        await pilot.press("enter")
        matrix = app.screen.query_one("#matrix", DataTable)
        await wait_for(pilot, lambda: "GPU Memory (gpt2)" in [str(c.label) for c in matrix.columns.values()],
                       what="the memory column for gpt2")
        row = matrix.get_row_at(0)
        assert row[1] == size(_memory(matrix_rows(str(tmp_path / "gpt2")))["lora"])
