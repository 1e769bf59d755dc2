"""`lf-tui export`: adapter-only and merged folders that stock PEFT and transformers load, with the model's logits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.errors import EngineError
from engine.export import MANIFEST, export
from engine.models import model_source
from engine.run_store import RunDir, RunStore
from tests.conftest import LEARNABLE, make_config, train
from tests.tiny_models import save_tiny_model

# max |logit difference| between a merged fp32 model and its adapter on an fp32 base, for logits up to ~5 in size
# (about 1e-5 relative: (W + BA)x and Wx + B(Ax) round differently); measured up to 1.1e-5 (QLoRA, all-linear)
FP32_TOLERANCE = 5e-5
# QLoRA: the merged model (the adapter folded into the full-precision base) differs from the model as trained (the
# adapter on the 4-bit NF4 base) by the base's quantisation error: its mean |logit gap| stays within this factor of
# the fp32 base's own gap to the 4-bit base. Measured on the built-in model (random weights, mean |logit| 0.92):
# merged vs trained 4-bit 0.39 mean (2.4 max), fp32 base vs 4-bit base 0.44 mean (2.5 max)
QLORA_VS_4BIT_FACTOR = 1.25
BF16_TOLERANCE = 0.25  # a bf16 merge against the adapter (bf16 keeps ~3 significant digits; measured 0.09-0.11)
STEPS = {"max_steps": 4, "learning_rate": 1e-2}
IDS = torch.tensor([[1, *range(20, 60, 3), 2, 7, 300, 499]])  # token ids of the built-in 512-token vocabulary


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def runs(root: Path) -> Any:
    """Trained runs by name (each trained once, on first use, in `root`/runs: the default runs dir from `root`)."""
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    store = RunStore(root / "runs")

    class Runs(dict):
        def __missing__(self, name: str) -> RunDir:
            method, _, arch = name.partition("@")
            extra: dict[str, Any] = {"hardware": {"mixed_precision": "no"}}
            if arch:
                extra["base_model"] = str(gpt2_folder(root) if arch == "gpt2" else sharded_folder(root, arch))
            if method == "adalora":
                extra["method_specific"] = {"target_modules": "all-linear", "init_r": 8, "target_r": 4, "deltaT": 1}
            run, _, code = train(store, make_config(method, training=STEPS, **extra), dataset)
            assert code == 0, (run.path / "engine.log").read_text()[-3000:]
            self[name] = run
            return run

    return Runs()


def gpt2_folder(root: Path) -> Path:
    """A tiny random GPT-2 (Conv1D layers, weights stored in x out) with the built-in tokenizer."""
    return save_tiny_model(root / "gpt2", "gpt2")


def sharded_folder(root: Path, arch: str) -> Path:
    """A tiny random `arch` model saved in several safetensors shards (an index beside them), as large models are."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = root / f"{arch}-sharded"
    if not (folder / "model.safetensors.index.json").is_file():
        single = save_tiny_model(root / arch, arch)
        AutoModelForCausalLM.from_pretrained(str(single)).save_pretrained(str(folder), max_shard_size="100KB")
        AutoTokenizer.from_pretrained(str(single)).save_pretrained(str(folder))
    return folder


def base_of(run: RunDir, dtype: torch.dtype = torch.float32) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_source(run.config()["base_model"]), dtype=dtype)  # type: ignore[index]


def adapter_model(run: RunDir, dtype: torch.dtype = torch.float32) -> Any:
    """The run's adapter on a fresh, unquantised base, with stock PEFT."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base_of(run, dtype), str(run.weights_dir))


def logits(model: Any) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=IDS).logits.float()


def load_merged(out: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(out))


def gap(a: torch.Tensor, b: torch.Tensor) -> float:
    measured = float((a - b).abs().max())
    print(f"max |logit gap| {measured:.3g}")  # shown with -s: the figures the tolerances above state
    return measured


def assert_plain(model: Any, dtype: torch.dtype) -> None:
    names = {type(m).__name__ for m in model.modules()}
    assert not names & {"Linear4bit", "Linear8bitLt"}, names
    assert not any("lora_" in n or "ia3_" in n for n, _ in model.named_modules())
    assert {p.dtype for p in model.parameters()} == {dtype}


@pytest.mark.parametrize("name", ["lora", "lora@gpt2"])
def test_lora_merged_equals_the_adapter_model(runs: Any, name: str, tmp_path: Path) -> None:
    """Llama (the built-in model) and GPT-2 (Conv1D, fan_in_fan_out): from_pretrained(merged) == PEFT's adapter."""
    from transformers import AutoTokenizer, GenerationConfig

    run = runs[name]
    result = export(run.path, tmp_path / "merged", merged=True, dtype="fp32")
    out = Path(result["out"])
    assert result["merged"] and result["dtype"] == "fp32" and (out / "config.json").is_file()
    merged, reference = load_merged(out), adapter_model(run)
    assert_plain(merged, torch.float32)
    assert merged.config.use_cache is True
    assert gap(logits(merged), logits(reference)) < FP32_TOLERANCE
    assert gap(logits(merged), logits(base_of(run))) > 1e-3  # the adapter trained: not the base
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    generation = GenerationConfig.from_pretrained(str(out))
    assert generation.eos_token_id == tokenizer.eos_token_id and generation.pad_token_id == tokenizer.pad_token_id
    card = (out / "README.md").read_text()
    for expected in ("## Method: lora", "`r`: `16`", "learnable.jsonl", "final loss", "AutoModelForCausalLM"):
        assert expected in card, expected
    assert json.loads((out / MANIFEST).read_text())["run_id"] == run.run_id


def test_lora_adapter_only_loads_with_stock_peft(runs: Any, tmp_path: Path) -> None:
    from peft import PeftModel

    run = runs["lora"]
    result = export(run.path, tmp_path / "adapter")
    out = Path(result["out"])
    assert not result["merged"] and result["weights"] == "peft"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "generation_config.json",
            "README.md", MANIFEST} <= {f["name"] for f in result["files"]}
    loaded = PeftModel.from_pretrained(base_of(run), str(out))
    assert gap(logits(loaded), logits(adapter_model(run))) == 0.0
    assert "PeftModel.from_pretrained" in (out / "README.md").read_text()


def test_bf16_merge_writes_bf16_safetensors(runs: Any, tmp_path: Path) -> None:
    from safetensors import safe_open

    run = runs["lora"]
    out = Path(export(run.path, tmp_path / "bf16", merged=True, dtype="bf16")["out"])
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    merged = load_merged(out)
    assert merged.dtype == torch.bfloat16
    assert gap(logits(merged), logits(adapter_model(run))) < BF16_TOLERANCE


def test_qlora_merges_into_the_dequantised_base(runs: Any, tmp_path: Path) -> None:
    """Never into 4-bit weights. By default into the NF4 base de-quantised (the weights it trained on): the merged
    model computes what the trained one did. With --qlora-base full: plain fp32 equal to the adapter on the
    unquantised base, and close (the quantisation error) to the model as trained on the 4-bit base."""
    from engine.generate import load_trained_model

    run = runs["qlora"]
    out = Path(export(run.path, tmp_path / "merged", merged=True, dtype="fp32", qlora_base="full")["out"])
    merged = load_merged(out)
    assert_plain(merged, torch.float32)
    assert gap(logits(merged), logits(adapter_model(run))) < FP32_TOLERANCE
    quantised_base: list[torch.Tensor] = []
    trained, *_ = load_trained_model(run, lambda base, *_: quantised_base.append(logits(base)))
    assert any(type(m).__name__ == "Linear4bit" for m in trained.modules())
    to_trained = (logits(merged) - logits(trained)).abs().mean()
    quantisation = (logits(base_of(run)) - quantised_base[0]).abs().mean()
    print(f"QLoRA: merged vs the trained 4-bit model {to_trained:.3f} mean |logit gap|, fp32 vs 4-bit base "
          f"{quantisation:.3f}")
    assert to_trained < QLORA_VS_4BIT_FACTOR * quantisation
    in_bf16 = load_merged(Path(export(run.path, tmp_path / "bf16", merged=True, dtype="bf16",
                                      qlora_base="full")["out"]))
    assert_plain(in_bf16, torch.bfloat16)
    assert gap(logits(in_bf16), logits(adapter_model(run, torch.bfloat16))) < BF16_TOLERANCE
    # the default (auto, here 4bit): into the NF4 base de-quantised, the weights it trained on: the model as trained
    result = export(run.path, tmp_path / "4bit", merged=True, dtype="fp32")
    assert result["merge_path"] == "streaming" and result["qlora_base"] == "4bit" and "nf4" in result["merge_path_reason"]
    on_4bit = load_merged(Path(result["out"]))
    assert_plain(on_4bit, torch.float32)
    print(f"QLoRA merged into the de-quantised 4-bit base vs the trained 4-bit model: "
          f"{(logits(on_4bit) - logits(trained)).abs().mean():.2e} mean |logit gap|")
    assert gap(logits(on_4bit), logits(trained)) < FP32_TOLERANCE
    with pytest.raises(EngineError, match="applies to QLoRA runs"):
        export(runs["lora"].path, tmp_path / "x", merged=True, qlora_base="4bit")
    with pytest.raises(EngineError, match="needs the streamed merge"):
        export(run.path, tmp_path / "x", merged=True, qlora_base="4bit", merge_path="in-memory")
    # auto, where the 4-bit merge cannot run (here: the in-memory path asked for): the full-precision base, said
    fallback = export(run.path, tmp_path / "fallback", merged=True, dtype="fp32", merge_path="in-memory")
    assert fallback["qlora_base"] == "full" and "QLoRA into the full-precision base" in fallback["merge_path_reason"]


@pytest.mark.parametrize("method", ["ia3", "adalora"])
def test_peft_methods_merged_equal_their_adapter_models(runs: Any, method: str, tmp_path: Path) -> None:
    run = runs[method]
    out = Path(export(run.path, tmp_path / "merged", merged=True, dtype="fp32")["out"])
    merged = load_merged(out)
    assert_plain(merged, torch.float32)
    assert gap(logits(merged), logits(adapter_model(run))) < FP32_TOLERANCE
    assert gap(logits(merged), logits(base_of(run))) > 1e-4


def test_full_finetune_merged_and_adapter_only_load(runs: Any, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    run = runs["full_finetune"]
    trained = AutoModelForCausalLM.from_pretrained(str(run.weights_dir))
    for merged in (True, False):
        result = export(run.path, tmp_path / str(merged), merged=merged, dtype="fp32" if merged else "auto")
        assert result["weights"] == "model"
        loaded = load_merged(Path(result["out"]))
        assert loaded.config.use_cache is True
        assert gap(logits(loaded), logits(trained)) < FP32_TOLERANCE


def test_adapters_refuse_merging_and_export_adapter_only(runs: Any, tmp_path: Path) -> None:
    from engine.generate import load_trained_model
    from methods.adapters.implementation import load_trained

    run = runs["adapters"]
    with pytest.raises(EngineError) as refused:
        export(run.path, tmp_path / "merged", merged=True)
    assert refused.value.kind == "export" and "non-linear" in refused.value.message
    assert "without --merged" in refused.value.hint
    assert list(tmp_path.iterdir()) == []  # nothing written, no staging folder left
    result = export(run.path, tmp_path / "adapter")
    out = Path(result["out"])
    assert result["weights"] == "lf-tui" and result["merge_refusal"]
    card = (out / "README.md").read_text()
    assert "cannot be merged" in card and "needs lf-tui's code" in card and "load_trained" in card
    loaded = load_trained(base_of(run), out)
    trained, *_ = load_trained_model(run)
    assert gap(logits(loaded), logits(trained)) < FP32_TOLERANCE


def test_refusals(runs: Any, store: RunStore, tmp_path: Path) -> None:
    empty = store.create("lora", make_config("lora").model_dump(mode="json"))
    with pytest.raises(EngineError, match="no trained weights") as no_weights:
        export(empty.path, tmp_path / "x")
    assert no_weights.value.kind == "export" and no_weights.value.hint
    run = runs["lora"]
    with pytest.raises(EngineError, match="--dtype applies to --merged"):
        export(run.path, tmp_path / "x", dtype="bf16")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(EngineError, match="not empty"):
            export(run.path, foreign, force=force)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "runs"]


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    found: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        found.update(load_file(str(file)))
    return found


@pytest.mark.parametrize("name", ["lora", "lora@gpt2", "lora@qwen2", "qlora", "adalora"])
def test_streamed_merge_equals_the_in_memory_merge(runs: Any, name: str, tmp_path: Path) -> None:
    """A LoRA-family adapter on a safetensors base merges shard by shard by default: the very tensors PEFT's
    in-memory merge_and_unload gives (fp32 and bf16), a folder plain from_pretrained loads, the adapter's logits."""
    run = runs[name]
    full: dict[str, Any] = {"qlora_base": "full"} if name == "qlora" else {}  # both on the unquantised base
    for dtype in ("fp32", "bf16"):
        streamed = export(run.path, tmp_path / f"streamed-{dtype}", merged=True, dtype=dtype, **full)
        in_memory = export(run.path, tmp_path / f"in-memory-{dtype}", merged=True, dtype=dtype, merge_path="in-memory",
                           **full)
        assert streamed["merge_path"] == "streaming" and "one shard at a time" in streamed["merge_path_reason"]
        assert in_memory["merge_path"] == "in-memory" and "asked for" in in_memory["merge_path_reason"]
        a, b = tensors(Path(streamed["out"])), tensors(Path(in_memory["out"]))
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), dtype
    out = Path(export(run.path, tmp_path / "merged", merged=True, dtype="fp32", **full)["out"])
    merged = load_merged(out)
    assert_plain(merged, torch.float32)
    assert merged.config.use_cache is True and json.loads((out / MANIFEST).read_text())["merge_path"] == "streaming"
    assert gap(logits(merged), logits(adapter_model(run))) < FP32_TOLERANCE
    assert gap(logits(merged), logits(base_of(run))) > 1e-4
    assert {"tokenizer.json", "generation_config.json", "README.md", "config.json"} <= {p.name for p in out.iterdir()}
    assert "Merged streaming: the base is" in (out / "README.md").read_text()
    if name == "lora@qwen2":  # the base's shards and index carried over, the total size that of the fp32 tensors
        index = json.loads((out / "model.safetensors.index.json").read_text())
        source = json.loads((Path(run.config()["base_model"]) / "model.safetensors.index.json").read_text())
        assert index["weight_map"] == source["weight_map"] and len(set(index["weight_map"].values())) > 2
        assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in tensors(out).values())


def test_other_methods_merge_in_memory_and_say_why(runs: Any, tmp_path: Path) -> None:
    result = export(runs["ia3"].path, tmp_path / "ia3", merged=True, dtype="fp32")
    assert result["merge_path"] == "in-memory" and "own hook" in result["merge_path_reason"]
    with pytest.raises(EngineError, match="streamed merge does not apply"):
        export(runs["ia3"].path, tmp_path / "forced", merged=True, merge_path="streaming")
    assert export(runs["lora"].path, tmp_path / "adapter")["merge_path"] is None


def test_installed_cli_merges_shard_by_shard_from_an_empty_folder(runs: Any, tmp_path: Path) -> None:
    """`.venv/bin/lf-tui export RUN --out DIR --merged` in a folder holding only ./runs, as the README shows."""
    import shutil

    run = runs["lora@qwen2"]
    shutil.copytree(run.path, tmp_path / "runs" / run.path.name)
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    proc = subprocess.run([str(Path(sys.executable).with_name("lf-tui")), "export", run.run_id, "--out", "merged",
                           "--merged"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "merged shard by shard (streaming)" in proc.stdout and "model-00001-of-" in proc.stdout
    assert "Traceback" not in proc.stderr
    merged = load_merged(tmp_path / "merged")
    assert gap(logits(merged), logits(adapter_model(run))) < FP32_TOLERANCE


def lf_tui(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([sys.executable, "-m", "lf_tui", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300, stdin=subprocess.DEVNULL)


def test_cli_export_as_a_user_runs_it(runs: Any, root: Path) -> None:
    """From the folder holding ./runs, a relative --out; a second export there is refused without --force."""
    from peft import PeftModel

    run = runs["lora"]
    first = lf_tui("export", run.run_id[:15], "--out", "exported", cwd=root)
    assert first.returncode == 0, first.stderr + first.stdout
    out = root / "exported"
    assert str(out) in first.stdout and "adapter_model.safetensors" in first.stdout and "in all" in first.stdout
    PeftModel.from_pretrained(base_of(run), str(out))
    again = lf_tui("export", run.run_id, "--out", "exported", "--merged", cwd=root)
    assert again.returncode == 1 and "not empty" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr
    forced = lf_tui("export", run.run_id, "--out", "exported", "--merged", "--dtype", "fp32", "--force", cwd=root)
    assert forced.returncode == 0, forced.stderr
    assert gap(logits(load_merged(out)), logits(adapter_model(run))) < FP32_TOLERANCE
    assert not (out / "adapter_model.safetensors").exists()  # the previous export was replaced, not mixed in
    usage = lf_tui("export", run.run_id, "--out", "elsewhere", "--dtype", "bf16", cwd=root)
    assert usage.returncode == 2 and "--merged" in usage.stderr
    missing = lf_tui("export", "no-such-run", "--out", "elsewhere", cwd=root)
    assert missing.returncode == 2 and "no run" in missing.stderr


def test_a_fused_runs_card_describes_the_fusion_not_a_training(tmp_path: Path) -> None:
    """The card of a fused run (its meta and summary as engine.fuse writes them) names its parents and recipe in
    place of the first parent's training settings; and booleans read true/false."""
    from engine.export import model_card

    recipe = {"combination": "dare_ties", "weights": [0.6, 0.4], "density": 0.5, "seed": 0, "rank": 16,
              "parents": [{"run_id": "lora-a", "weight": 0.6, "rank": 16, "weights_from": "final"},
                          {"run_id": "lora-b", "weight": 0.4, "rank": 16, "weights_from": "best_eval"}]}
    cfg = make_config("lora", training={"max_steps": 30, "learning_rate": 2e-3})
    store = RunStore(tmp_path / "runs")
    fused = store.create("fused-lora", {**cfg.model_dump(mode="json"), "fusion": recipe},
                         {"derived_from": ["lora-a", "lora-b"], "fusion": recipe, "dataset": "a.jsonl + b.jsonl"})
    (fused.path / "summary.json").write_text(json.dumps({
        "status": "completed", "total_steps": 0, "fusion": recipe, "weights_from": "fused",
        "convergence": {"verdict": "not trained"}}))
    manifest = {"weights": "peft", "merged": False, "dtype": "fp32", "weights_from": "fused"}
    card = model_card(fused, cfg, manifest, tmp_path / "out", "")
    assert "# fusion of 2 lora runs" in card and "## Fusion" in card and "combination dare_ties, density 0.5" in card
    assert "- `lora-a`: weight 0.6, rank 16" in card and "- `lora-b`: weight 0.4, rank 16" in card
    assert "rank-16 adapter" in card and "a.jsonl + b.jsonl" in card
    assert "learning rate" not in card and "30 steps" not in card and "convergence" not in card
    trained = store.create("lora", cfg.model_dump(mode="json"), {"dataset": "a.jsonl"})
    card = model_card(trained, cfg, manifest, tmp_path / "out", "")
    assert "## Training" in card and "gradient checkpointing false" in card and "False" not in card
