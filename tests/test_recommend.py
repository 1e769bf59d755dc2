"""What fits: the ranked candidates (plain module), `lf-tui recommend` as a user runs it, and the app's screen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.recommend import longest_example_tokens, rank, recommend
from methods.memory_plan import GiB
from tests.test_memory_plan import LLAMA2_7B
from tests.tui_helpers import wait_for

LF_TUI = Path(sys.executable).with_name("lf-tui")


@pytest.fixture
def llama7b(tmp_path: Path) -> str:
    (tmp_path / "llama-7b").mkdir()
    (tmp_path / "llama-7b" / "config.json").write_text(json.dumps(LLAMA2_7B))
    return str(tmp_path / "llama-7b")


def test_every_candidate_fits_and_the_goal_orders_them(llama7b: str) -> None:
    found, notes = recommend(llama7b, 24 * GiB, "memory")
    assert found and all(c.plan.total <= 24 * GiB for c in found)
    methods = {c.method for c in found}
    assert "full_finetune" not in methods  # 7B in full needs ~112 GiB
    assert {"lora", "qlora"} <= methods
    totals = [c.plan.total for c in found]
    assert totals == sorted(totals) and found[0].method == "qlora"  # least memory: the 4-bit base
    speed = rank(found, "speed")
    assert [c.speed for c in speed] == sorted((c.speed for c in speed), reverse=True)
    quality = rank(found, "quality")
    assert quality[0].quality == max(c.quality for c in found)
    for candidate in found:  # each carries the config that produced its estimate
        inner = candidate.document["method_config"]
        assert inner["base_model"] == llama7b and inner["training"]["batch_size"] == candidate.settings["batch"]
    bigger = recommend(llama7b, 160 * GiB, "quality")[0]
    assert "full_finetune" in {c.method for c in bigger}
    assert recommend(llama7b, 2 * GiB, "quality")[0] == []  # nothing fits


def test_a_dataset_bounds_the_planned_sequence(tmp_path: Path, llama7b: str) -> None:
    data = tmp_path / "short.jsonl"
    data.write_text("".join(json.dumps({"instruction": "Say hi.", "output": "Hi!" * n}) + "\n" for n in (1, 5, 40)))
    longest = longest_example_tokens(str(data))
    assert longest is not None and 20 < longest < 60
    short, notes = recommend(llama7b, 24 * GiB, "memory", dataset=str(data))
    long, _ = recommend(llama7b, 24 * GiB, "memory")
    assert any("longest example" in n for n in notes)
    assert short[0].plan.setting.seq_len == longest and short[0].plan.total < long[0].plan.total
    # the estimate only plans: the configs keep the method's max_seq_length (a rough estimate must not truncate)
    assert all(c.document["method_config"]["training"]["max_seq_length"] == 512 for c in short)


def test_least_memory_offers_the_smallest_batch_and_folders_become_absolute(tmp_path: Path, llama7b: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(llama7b).parent)
    found, _ = recommend("llama-7b", 24 * GiB, "memory")  # a relative folder, as a user types it
    assert found[0].settings["batch"] == 1 and found[0].settings["gradient checkpointing"] == "on"
    assert all(c.document["method_config"]["base_model"] == llama7b for c in found)


def test_recommend_as_the_readme_shows_it(tmp_path: Path, llama7b: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(LF_TUI), "recommend", "--base-model", llama7b, "--gpu-memory", "24GiB", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["goal"] == "quality" and out["candidates"]
    assert all(c["total_bytes"] <= 24 * GiB for c in out["candidates"])
    table = subprocess.run([str(LF_TUI), "recommend", "--base-model", llama7b, "--gpu-memory", "1GiB"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert table.returncode == 1 and "nothing fits" in table.stdout


async def test_the_screen_lists_what_fits_and_opens_one_in_the_editor(llama7b: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import DataTable, Input, TextArea

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.editor_screen import EditorScreen
    from lf_tui.screens.recommend_screen import RecommendScreen

    monkeypatch.setenv("LF_TUI_GPU_MEMORY", "24GiB")  # a 7B model fits a 24 GiB GPU, not this CPU's RAM
    app = LfTuiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, RecommendScreen), what="the recommend screen")
        screen = app.screen
        assert isinstance(screen, RecommendScreen)
        model = screen.query_one("#model", Input)
        model.value = llama7b
        model.focus()
        await pilot.press("enter")
        table = screen.query_one("#candidates", DataTable)
        await wait_for(pilot, lambda: bool(table.row_count > 0 and screen.found and
                       screen.found[0].document["method_config"]["base_model"] == llama7b), what="candidates")
        first = screen.found[0]
        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
        text = app.screen.query_one("#config", TextArea).text
        inner = json.loads(text)["method_config"]
        assert inner["base_model"] == llama7b and inner["method_name"] == first.method
        assert inner["training"]["batch_size"] == first.settings["batch"]


def test_the_screen_plans_for_what_the_editor_assumes(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU and no $LF_TUI_GPU_MEMORY: this CPU and its RAM (exactly, not the input's rounded text); a set size: a
    GPU of it, as typed."""
    import engine.planning
    from lf_tui.screens.recommend_screen import RecommendScreen

    monkeypatch.delenv("LF_TUI_GPU_MEMORY", raising=False)
    monkeypatch.setattr(engine.planning, "gpu_budget", lambda: (None, ""))
    ram = engine.planning.ram_budget()[0]
    device, where, budget, shown = RecommendScreen._machine()
    assert (device, where, budget) == ("cpu", "this machine's CPU", ram) and shown == f"{ram / 2 ** 30:.1f}GiB"
    monkeypatch.setenv("LF_TUI_GPU_MEMORY", "24GiB")
    assert RecommendScreen._machine() == ("cuda", "$LF_TUI_GPU_MEMORY", 24 * GiB, "24GiB")
    assert RecommendScreen(budget="80GiB").device == "cuda"
