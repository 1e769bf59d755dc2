"""One config, one memory figure: the editor's line, `lf-tui plan --json`, What fits and a real run's planned peak agree
(this machine's CPU and RAM without a GPU; a GPU of $LF_TUI_GPU_MEMORY when it is set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.planning import BUDGET_ENV, gpu_budget, machine_budget
from engine.protocol import RunStarted
from engine.recommend import recommend
from lf_tui.present.memory_text import size
from methods.validation import validate_config
from tests.conftest import train
from tests.tui_helpers import wait_for

LF_TUI = Path(sys.executable).with_name("lf-tui")
ROOT = Path(__file__).resolve().parents[1]


def _config_file(folder: Path) -> Path:
    """LoRA's defaults (builtin:tiny-llama, batch 4, max_seq_length 512), one optimizer step, nothing saved."""
    document = json.loads((ROOT / "methods" / "lora" / "defaults.json").read_text())
    inner = document["method_config"]
    assert (inner["training"]["batch_size"], inner["training"]["max_seq_length"]) == (4, 512)
    inner["training"]["max_steps"] = 1
    inner["monitoring"].update(eval_steps=0, save_steps=0)
    path = folder / "cfg.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def _plan_json(folder: Path, gpu_env: str | None) -> dict[str, Any]:
    """`lf-tui plan -c cfg.json --json` as a user types it, from the config's folder."""
    env = {k: v for k, v in os.environ.items() if k != BUDGET_ENV}
    if gpu_env:
        env[BUDGET_ENV] = gpu_env
    proc = subprocess.run([str(LF_TUI), "plan", "-c", "cfg.json", "--json"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def _editor_line(path: Path, tmp_path: Path) -> str:
    from textual.widgets import Static

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.editor_screen import EditorScreen

    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await app.push_screen(EditorScreen("lora", path.read_text(), path=path))
        line = lambda: str(app.screen.query_one("#memory", Static).render())  # noqa: E731
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and "memory ~" in line(),
                       what="the editor's estimate")
        return line()


async def _what_fits(tmp_path: Path) -> tuple[str, list[Any]]:
    """The F3 screen's status line and candidates for the built-in model at its default budget."""
    from textual.widgets import Static

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.recommend_screen import RecommendScreen

    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, RecommendScreen) and bool(app.screen.found),
                       what="the candidates")
        screen = app.screen
        assert isinstance(screen, RecommendScreen)
        return str(screen.query_one("#recommend-status", Static).render()), list(screen.found)


def _recommended_lora(total: int, device: str) -> Any:
    """What fits at a budget of exactly `total`: LoRA r 16 without checkpointing fits at batch 4 and no larger."""
    found, _ = recommend("builtin:tiny-llama", total, "quality", device)  # type: ignore[arg-type]
    lora = [c for c in found if c.method == "lora" and c.settings.get("r") == 16
            and c.settings["gradient checkpointing"] == "off"]
    assert len(lora) == 1 and lora[0].settings["batch"] == 4, [c.settings for c in lora]
    return lora[0]


@pytest.mark.skipif(gpu_budget()[0] is not None, reason="plans for this machine's GPU here, not its CPU")
async def test_on_this_cpu_every_front_end_and_the_run_show_one_figure(tmp_path: Path, store: Any,
                                                                       learnable_dataset: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    path = _config_file(tmp_path)
    planned = _plan_json(tmp_path, None)
    total = planned["total_bytes"]
    assert planned["setting"]["device"] == "cpu" and planned["budget_source"] == "this machine's CPU"
    assert planned["setting"]["seq_len"] == 512 and planned["seq_len_source"] == "training.max_seq_length"
    device, ram, _ = machine_budget()
    assert device == "cpu" and planned["budget_bytes"] == ram

    line = await _editor_line(path, tmp_path)
    precision = planned["setting"]["precision"]
    assert line.startswith(f"memory ~{size(total)} (cpu {precision})"), line
    assert f"fits {size(ram)} RAM: {size(ram - total)} spare" in line, line

    assert _recommended_lora(total, device).plan.total == total
    status, found = await _what_fits(tmp_path)
    assert f"in {size(ram)} RAM (this machine's CPU)" in status, status
    assert {c.plan.setting.device for c in found} == {"cpu"}

    config = validate_config(json.loads(path.read_text())).config
    run, events, code = train(store, config, learnable_dataset)
    assert code == 0, [e for e in events if e.type == "error"]
    started = next(e for e in events if isinstance(e, RunStarted))
    # the dataset's examples are far shorter than 512 tokens: the run still records the figure planned above
    assert started.planned_peak_bytes == total
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["planned_peak_mb"] == round(total / 2 ** 20, 1) and summary["runtime_memory_mb"] > 0


async def test_with_a_gpu_size_set_every_front_end_plans_for_that_gpu(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUDGET_ENV, "24GiB")
    path = _config_file(tmp_path)
    planned = _plan_json(tmp_path, "24GiB")
    total = planned["total_bytes"]
    assert planned["setting"]["device"] == "cuda" and planned["budget_source"] == f"${BUDGET_ENV}"
    assert planned["breakdown"]["runtime overhead"] > 0  # the CUDA context, which a GPU's measured peak includes
    assert machine_budget() == ("cuda", 24 * 1024 ** 3, f"${BUDGET_ENV}")

    line = await _editor_line(path, tmp_path)
    assert line.startswith(f"memory ~{size(total)} (cuda bf16)"), line
    assert f"fits 24.0 GiB GPU: {size(24 * 1024 ** 3 - total)} spare (${BUDGET_ENV})" in line, line

    assert _recommended_lora(total, "cuda").plan.total == total
    status, found = await _what_fits(tmp_path)
    assert f"in 24.0 GiB GPU (${BUDGET_ENV})" in status, status
    assert {c.plan.setting.device for c in found} == {"cuda"}
