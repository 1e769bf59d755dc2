"""The memory planner: model sizes from config.json, the breakdown's arithmetic, and `lf-tui plan` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.planning import PlanError, estimate, model_shape
from methods.catalogue import get_catalogue
from methods.memory_plan import GiB, parse_size
from methods.model_shape import shape_from_config
from tests.conftest import make_config

LF_TUI = Path(sys.executable).with_name("lf-tui")
# the published config.json files of three real models (the fields the planner reads)
LLAMA2_7B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000, "tie_word_embeddings": False}
LLAMA3_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False}
GPT2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257, "n_positions": 1024}


@pytest.mark.parametrize("config,params", [(LLAMA2_7B, 6.738e9), (LLAMA3_8B, 8.030e9), (GPT2, 124.4e6)])
def test_parameter_counts_match_the_published_ones(config: dict, params: float) -> None:
    shape = shape_from_config(config)
    assert abs(shape.total_params - params) / params < 0.01, shape.total_params


@pytest.fixture
def llama7b(tmp_path: Path) -> str:
    (tmp_path / "llama-7b").mkdir()
    (tmp_path / "llama-7b" / "config.json").write_text(json.dumps(LLAMA2_7B))
    return str(tmp_path / "llama-7b")


def test_full_finetuning_holds_sixteen_bytes_a_parameter(llama7b: str) -> None:
    cfg = make_config("full_finetune", base_model=llama7b, training={"batch_size": 1, "max_seq_length": 512})
    plan, shape, _ = estimate(cfg, "cuda")
    params = shape.total_params
    # fp32 masters (mixed precision), fp32 gradients, AdamW's two fp32 moments
    assert plan.parts["weights"] == 4 * params and plan.parts["gradients"] == 4 * params
    assert plan.parts["optimizer states"] == 8 * params and plan.parts["trainable weights"] == 0
    assert 110 * GiB < plan.total < 130 * GiB  # LLaMA-Factory's table: 120GB for full bf16 AMP on 7B
    sgd = estimate(make_config("full_finetune", base_model=llama7b, training={"optimizer": "sgd"}), "cuda")[0]
    assert sgd.parts["optimizer states"] == 4 * params


def test_gradient_checkpointing_and_batch_move_the_activations(llama7b: str) -> None:
    def plan(**hardware_and_training: object):
        hardware = {"gradient_checkpointing": hardware_and_training.pop("gc", False)}
        cfg = make_config("adapters", base_model=llama7b, hardware=hardware, training=dict(hardware_and_training))
        return estimate(cfg, "cuda")[0]

    one, four = plan(batch_size=1, max_seq_length=1024), plan(batch_size=4, max_seq_length=1024)
    assert four.parts["activations"] == pytest.approx(4 * one.parts["activations"], rel=1e-6)
    checkpointed = plan(batch_size=4, max_seq_length=1024, gc=True)
    assert checkpointed.parts["activations"] < four.parts["activations"] / 5
    assert checkpointed.parts["weights"] == four.parts["weights"] == 2 * one.params  # a frozen base loads in bf16


def test_the_cpu_plan_counts_fp32_weights_and_no_gpu_overhead(llama7b: str) -> None:
    cfg = make_config("prefix_tuning", base_model=llama7b)
    gpu, cpu = estimate(cfg, "cuda")[0], estimate(cfg, "cpu")[0]
    assert cpu.parts["weights"] == 2 * gpu.parts["weights"] and cpu.parts["runtime overhead"] == 0
    assert gpu.parts["runtime overhead"] > 0
    assert gpu.trainable_params == 20 * 2 * 32 * 4096  # 20 virtual tokens, a key and a value per layer (no GQA)


def test_unreachable_model_configs_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(PlanError, match="not in the Hugging Face cache") as info:
        model_shape("someone/NotCached-7B")
    assert "local model folder" in info.value.hint
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(PlanError, match="cannot read the model's config"):
        model_shape(str(tmp_path / "broken"))
    (tmp_path / "broken" / "config.json").write_text("[1, 2]")
    with pytest.raises(PlanError, match="not an object"):
        model_shape(str(tmp_path / "broken"))
    (tmp_path / "broken" / "config.json").write_text(json.dumps({**LLAMA2_7B, "num_attention_heads": 0}))
    with pytest.raises(PlanError, match="num_attention_heads"):
        model_shape(str(tmp_path / "broken"))
    with pytest.raises(PlanError, match="no such folder"):  # written as a path: never asked of the hub
        model_shape("./not-here")


def test_sizes_parse_as_gpus_are_sold() -> None:
    assert parse_size("24GiB") == parse_size("24GB") == parse_size("24g") == 24 * GiB
    assert parse_size("512MiB") == 512 * 1024 ** 2 and parse_size("1000") == 1000
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def _plan(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(cwd / ".hf")}  # no hub here: the offline answer
    return subprocess.run([str(LF_TUI), "plan", *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env=env)


def test_plan_as_the_readme_shows_it(tmp_path: Path) -> None:
    """From an empty folder, with a relative config path, as a user types it."""
    (tmp_path / "my.json").write_text(json.dumps({"method": "adapters", "base_model": "builtin:tiny-llama"}))
    proc = _plan(tmp_path, "-c", "my.json", "--gpu-memory", "8GiB", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["total_bytes"] == sum(out["breakdown"].values()) and out["fits"] is True
    assert set(out["breakdown"]) >= {"weights", "trainable weights", "gradients", "optimizer states", "activations",
                                     "logits and loss", "runtime overhead"}
    table = _plan(tmp_path, "-c", "my.json", "--gpu-memory", "1MiB")
    assert table.returncode == 1 and "does not fit in 1.0 MiB" in table.stdout and "largest part" in table.stdout
    assert "activations" in table.stdout and "total (estimated peak)" in table.stdout
    (tmp_path / "bad.json").write_text('{"method": "adapters", "training": {"batch_size": 0}}')
    bad = _plan(tmp_path, "-c", "bad.json")
    assert bad.returncode == 2 and "training.batch_size" in bad.stderr + bad.stdout
    offline = _plan(tmp_path, "-c", "my.json", "--base-model", "nobody/Missing-7B")
    assert offline.returncode == 2 and "Traceback" not in offline.stderr and "config.json" in offline.stderr
    missing = _plan(tmp_path, "-c", "my.json", "--base-model", "./nothere")
    assert missing.returncode == 2 and "no such folder" in missing.stderr and "Traceback" not in missing.stderr
    no_data = _plan(tmp_path, "-c", "my.json", "--dataset", "nope.jsonl")
    assert no_data.returncode == 2 and "nope.jsonl" in no_data.stderr


@pytest.mark.parametrize("method", get_catalogue().names())
def test_each_methods_footprint_counts_the_parameters_it_trains(method: str) -> None:
    """The planner's trainable count is the built model's, for every method in the catalogue (its spec's memory=)."""
    pytest.importorskip("bitsandbytes") if method == "qlora" else None
    from engine.models import count_parameters
    from tests.engine_builders import built

    info = get_catalogue().get(method).info
    assert info.memory is not None, f"{method}'s spec declares no memory footprint"
    try:
        cfg, _, model, _ = built(method)
    except Exception as exc:  # QLoRA on a CPU without bitsandbytes' kernels for the built-in model's width
        pytest.skip(f"{method} does not build here: {exc}")
    shape, _ = model_shape(cfg.base_model)
    planned = info.memory(shape, cfg).trainable_params
    actual = count_parameters(model)[0]
    assert abs(planned - actual) <= 0.01 * actual, (planned, actual)


def test_plan_for_a_datasets_longest_example(tmp_path: Path) -> None:
    (tmp_path / "my.json").write_text(json.dumps({"method": "adapters", "training": {"max_seq_length": 1024}}))
    (tmp_path / "data.jsonl").write_text(json.dumps({"instruction": "Say hi.", "output": "Hi!"}) + "\n")
    full = json.loads(_plan(tmp_path, "-c", "my.json", "--json").stdout)
    short = json.loads(_plan(tmp_path, "-c", "my.json", "--dataset", "data.jsonl", "--json").stdout)
    assert full["setting"]["seq_len"] == 1024 and short["setting"]["seq_len"] < 32
    assert short["breakdown"]["activations"] < full["breakdown"]["activations"] / 20


def test_probe_as_the_readme_shows_it(tmp_path: Path) -> None:
    """`lf-tui probe` from an empty folder: a real measurement beside the planner's figure; a CPU refuses --find-batch."""
    (tmp_path / "my.json").write_text(json.dumps({"method": "lora", "training": {"max_seq_length": 64,
                                                                                  "batch_size": 2}}))
    proc = subprocess.run([str(LF_TUI), "probe", "-c", "my.json", "--steps", "1", "--json"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["peak_bytes"] > 0 and out["planned_bytes"] > 0 and out["device"] == "cpu"
    assert out["batch_size"] == 2 and out["seq_len"] == 64 and isinstance(out["planner_error"], float)
    refused = subprocess.run([str(LF_TUI), "probe", "-c", "my.json", "--steps", "1", "--find-batch"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert refused.returncode == 1 and "needs a CUDA GPU" in refused.stderr and "Traceback" not in refused.stderr
