"""`lf-tui plan` plans for the config's explicit hardware.device, says when no GPU budget is known, sizes hub ids the
project ships offline, and every memory figure (plan, editor line, matrix caption, recommend, probe) says what it
assumes and counts: plain modules and the installed CLI from an empty folder, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.planning import estimate, gpu_budget, model_shape, plan_target
from lf_tui.cli.probe import planned
from lf_tui.present import memory_text
from methods.memory_plan import GiB
from methods.validation import validate_config

LF_TUI = Path(sys.executable).with_name("lf-tui")
LLAMA = "meta-llama/Llama-2-7b-hf"
# a 7B LoRA config written for a GPU box (the issue's: all linear layers, batch 2 x 512)
GPU_CONFIG = {"method": "lora", "base_model": LLAMA, "method_specific": {"target_modules": "all-linear"},
              "training": {"batch_size": 2, "max_seq_length": 512}, "hardware": {"device": "cuda"}}


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with no GPU and no budget in the environment, offline."""
    monkeypatch.delenv("LF_TUI_GPU_MEMORY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("engine.planning.gpu_budget", lambda: (None, ""))


def _lf(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "LF_TUI_GPU_MEMORY"}
    return subprocess.run([str(LF_TUI), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**clean, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **env},
                          stdin=subprocess.DEVNULL)


def test_the_configs_device_is_the_plans_and_an_unknown_budget_is_said(no_gpu: None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert plan_target("cuda") == ("cuda", None, "", "hardware.device in the config")
    assert plan_target("cuda:1", budget=40 * GiB, where="--gpu-memory")[:3] == ("cuda", 40 * GiB, "--gpu-memory")
    assert plan_target("cuda", device="cpu").device == "cpu"  # --device wins
    assert plan_target("cpu").device == plan_target("auto").device == "cpu"  # this machine has no GPU
    monkeypatch.setenv("LF_TUI_GPU_MEMORY", "24GiB")
    assert plan_target("cuda")[:3] == ("cuda", 24 * GiB, "$LF_TUI_GPU_MEMORY")
    cfg = validate_config(GPU_CONFIG).config
    plan = estimate(cfg, "cuda")[0]
    assert memory_text.verdict(plan, None).startswith("fits: unknown: no GPU memory budget is known")
    assert "give --gpu-memory" in memory_text.verdict(plan, None)
    editor = memory_text.editor_line(plan, None, "")
    assert editor.splitlines() == [f"memory ~{memory_text.size(plan.total)} (cuda bf16)",
                                   "batch 2 x 512; incl. CUDA runtime", "fits: unknown (set $LF_TUI_GPU_MEMORY)"]


def test_a_hub_id_the_project_ships_is_planned_offline(no_gpu: None) -> None:
    shape, source = model_shape(LLAMA)
    assert source.startswith(f"bundled reference shape of {LLAMA}") and shape.hidden_size == 4096
    assert model_shape("META-LLAMA/llama-2-7b-hf")[1] == source  # hub ids are case-insensitive
    total = estimate(validate_config(GPU_CONFIG).config, "cuda")[0].total
    assert 21 * GiB < total < 25 * GiB  # the 22.8 GiB (litgpt's published A100 peak within 7%)


def test_every_figure_says_what_it_assumes_and_counts() -> None:
    cfg = validate_config(GPU_CONFIG).config
    gpu, cpu = estimate(cfg, "cuda")[0], estimate(cfg, "cpu")[0]
    assert memory_text.figure(gpu).endswith("(cuda bf16, batch 2 x 512 tokens; incl. CUDA runtime)")
    assert "training only" in memory_text.figure(cpu) and "not included" in memory_text.covers(cpu)
    assert "cpu" in memory_text.editor_line(cpu, 64 * GiB, "").splitlines()[0]
    assert "training only" in memory_text.editor_line(cpu, 64 * GiB, "").splitlines()[1]
    caption = memory_text.matrix_caption("Llama-2-7B")
    assert "cuda bf16, batch 4 x 512 tokens" in caption and "CUDA runtime included" in caption
    assert "qlora" in caption and "gradient checkpointing" in caption  # the one method whose defaults differ
    assert memory_text.recommend_count_line(10, 22, "quality") == (
        "10 of 22 shown; 12 more fit, ranked lower for quality: --top 22 or --all shows every one")
    assert memory_text.recommend_count_line(5, 5, "speed") == "all 5 shown"
    assert memory_text.recommend_assumes(gpu).startswith("Est. memory: cuda bf16, each row's batch x 512 tokens")


def test_probe_compares_like_with_like(tmp_path: Path) -> None:
    path = tmp_path / "my.json"
    path.write_text(json.dumps({**GPU_CONFIG, "base_model": LLAMA}))
    cfg = validate_config(GPU_CONFIG).config
    plan = estimate(cfg, "cuda")[0]
    training = plan.total - plan.parts["runtime overhead"]
    gpu = planned(str(path), {"device": "cuda:0", "precision": "bf16", "batch_size": 2, "seq_len": 512,
                              "peak_bytes": training})
    # the allocator's peak has no CUDA context and no slack: compared without the plan's runtime overhead
    assert gpu["planned_bytes"] == plan.total and gpu["compared_bytes"] == training and gpu["planner_error"] == 0
    cpu = planned(str(path), {"device": "cpu", "precision": "fp32", "batch_size": 1, "seq_len": 64,
                              "peak_bytes": 10 * GiB})
    assert cpu["planned_setting"]["precision"] == "fp32" and cpu["planned_setting"]["batch_size"] == 1
    assert cpu["planned_setting"]["seq_len"] == 64 and cpu["compared_bytes"] == cpu["planned_bytes"]
    mps = planned(str(path), {"device": "mps", "precision": "fp32", "batch_size": 2, "seq_len": 512,
                              "peak_bytes": GiB})
    assert mps["planner_error"] is None and "mps" in str(mps["planner_error_note"])


def test_plan_from_an_empty_folder_for_a_gpu_config_on_a_machine_without_one(tmp_path: Path) -> None:
    (tmp_path / "gpu.json").write_text(json.dumps(GPU_CONFIG))
    shown = _lf(tmp_path, "plan", "-c", "gpu.json")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "assumes: cuda (hardware.device in the config) bf16, batch 2 x 512 tokens" in text
    assert "CUDA runtime included" in text
    if gpu_budget()[0] is None:  # NVML sees no GPU here (a GPU box plans for its own GPU)
        assert "fits: unknown" in text and "give --gpu-memory" in text
    assert f"model config: bundled reference shape of {LLAMA}" in text
    data = json.loads(_lf(tmp_path, "plan", "-c", "gpu.json", "--json").stdout)
    assert data["setting"]["device"] == "cuda" and (data["fits"] is None) == (gpu_budget()[0] is None)
    assert data["device_source"] == "hardware.device in the config"
    fits = json.loads(_lf(tmp_path, "plan", "-c", "gpu.json", "--gpu-memory", "40GiB", "--json").stdout)
    assert fits["fits"] is True and fits["total_bytes"] == data["total_bytes"]
    on_cpu = json.loads(_lf(tmp_path, "plan", "-c", "gpu.json", "--device", "cpu", "--json").stdout)
    assert on_cpu["setting"]["device"] == "cpu" and on_cpu["device_source"] == "--device"
    direct = _lf(tmp_path, "plan", "-c", "gpu.json", "--base-model", LLAMA, "--gpu-memory", "40GiB")
    assert direct.returncode == 0 and "not in the cache" not in direct.stderr, direct.stderr
    cut = _lf(tmp_path, "recommend", "--base-model", LLAMA, "--gpu-memory", "24GiB", "--top", "3")
    assert cut.returncode == 0, cut.stderr
    assert "3 of " in cut.stdout and "more fit, ranked lower for quality" in cut.stdout and "--all" in cut.stdout
    every = json.loads(_lf(tmp_path, "recommend", "--base-model", LLAMA, "--gpu-memory", "24GiB", "--all",
                           "--json").stdout)
    assert every["shown"] == every["total_candidates"] == len(every["candidates"]) > 3


def test_gpu_memory_plans_a_gpu_whatever_the_configs_device(no_gpu: None) -> None:
    """--gpu-memory with a config for the CPU (or Apple's mps) sizes a GPU of that memory, not the CPU's RAM."""
    for config_device in ("cpu", "mps", "cuda", "auto"):
        assert plan_target(config_device, budget=40 * GiB, where="--gpu-memory") == \
            ("cuda", 40 * GiB, "--gpu-memory", "--gpu-memory"), config_device
    assert plan_target("cpu", device="cpu", budget=40 * GiB, where="--gpu-memory").device == "cpu"  # --device wins
