"""The streamed merge (engine.merge_stream + engine.merge_write) against PEFT's merge_and_unload, tensor for tensor, on
sharded bases: DoRA, rsLoRA, rank and alpha patterns, modules_to_save, LoRA biases, embeddings, GPT-2's Conv1D, AdaLoRA;
and the reasons it gives when it does not apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.merge_stream import NotStreamable, base_folder, plan
from engine.merge_write import merge_shards
from tests.tiny_models import save_tiny_model

# name -> (architecture, PEFT config class, its arguments): random (init_lora_weights=False) adapters
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "dora+modules_to_save": ("llama", "LoraConfig", dict(r=4, target_modules=["q_proj", "v_proj"], use_dora=True,
                                                         modules_to_save=["lm_head"])),
    "patterns+embedding": ("llama", "LoraConfig", dict(r=4, lora_alpha=6, target_modules=[
        "q_proj", "o_proj", "embed_tokens", "gate_proj"], rank_pattern={"o_proj": 2},
        alpha_pattern={"layers.1.self_attn.q_proj": 3})),
    "gpt2 conv1d rslora bias": ("gpt2", "LoraConfig", dict(r=4, target_modules=["c_attn", "c_proj", "wte"],
                                                           fan_in_fan_out=True, use_rslora=True, bias="lora_only")),
    "gpt2 dora": ("gpt2", "LoraConfig", dict(r=4, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True,
                                             use_dora=True)),
    "qwen2 lora_bias": ("qwen2", "LoraConfig", dict(r=4, target_modules=["q_proj", "k_proj", "v_proj"], lora_bias=True)),
    "adalora": ("llama", "AdaLoraConfig", dict(init_r=6, target_r=3, lora_alpha=12, target_modules=[
        "q_proj", "down_proj"], total_step=10)),
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """arch -> a tiny random model saved in several safetensors shards (with an index), as large models are."""
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("streaming")
    found = {}
    for arch in ("llama", "gpt2", "qwen2"):
        single = save_tiny_model(root / arch, arch)
        AutoModelForCausalLM.from_pretrained(str(single)).save_pretrained(str(root / f"{arch}-sharded"),
                                                                           max_shard_size="100KB")
        found[arch] = root / f"{arch}-sharded"
    return found


def make_adapter(base: Path, config_class: str, kwargs: dict[str, Any], out: Path) -> Path:
    """A PEFT adapter with every trained tensor non-trivial (B, DoRA magnitudes, AdaLoRA's E, biases) saved in `out`."""
    import peft
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    extra = {"init_lora_weights": False} if config_class == "LoraConfig" else {}
    model = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                                getattr(peft, config_class)(**kwargs, **extra))
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if "lora_magnitude" in name:
                tensor.mul_(1.1)
            elif "lora_E" in name:
                tensor.normal_()
            elif tensor.requires_grad and (name.endswith("bias") or "modules_to_save" in name):
                tensor.add_(0.1)
    if config_class == "AdaLoraConfig":  # a rank budget as training leaves it: 2 of every 3 ranks kept, 0 in one layer
        pattern = {n: [i % 3 != 2 for i in range(kwargs["init_r"])] for n, _ in model.base_model.model.named_parameters()
                   if "lora_E" in n}
        pattern[next(iter(pattern))] = [False] * kwargs["init_r"]
        model.peft_config["default"].rank_pattern = pattern
    model.save_pretrained(str(out))
    return out


def merged_by_peft(base: Path, adapter: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype), str(adapter))
    return model.merge_and_unload().state_dict()


def read(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    found: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        found.update(load_file(str(file)))
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_streamed_merge_equals_peft_merge_and_unload(bases: dict[str, Path], case: str, tmp_path: Path) -> None:
    arch, config_class, kwargs = CASES[case]
    adapter = make_adapter(bases[arch], config_class, kwargs, tmp_path / "adapter")
    found = plan(str(bases[arch]), adapter)
    assert len(found.shards) > 2 and found.deltas
    source = read(bases[arch])
    for dtype in (torch.float32, torch.bfloat16):
        out = tmp_path / str(dtype)
        out.mkdir()
        total = merge_shards(found, dtype, out)
        got, expected = read(out), merged_by_peft(bases[arch], adapter, dtype)
        assert set(got) == set(source) and set(got) <= set(expected)  # every stored tensor (a tied one stays tied)
        unequal = [k for k in got if not torch.equal(got[k], expected[k])]
        assert not unequal, (dtype, unequal[:5])
        assert {t.dtype for t in got.values()} == {dtype}
        changed = [k for k in got if not torch.equal(got[k].float(), source[k].to(dtype).float())]
        adapted = sum(delta.parts["A"].shape[0] > 0 for delta in found.deltas.values())  # not pruned to rank 0
        assert adapted and len(changed) >= adapted, changed  # the adapter moved what it adapts
        index = json.loads((out / "model.safetensors.index.json").read_text())
        assert index["weight_map"] == json.loads((bases[arch] / "model.safetensors.index.json").read_text())[
            "weight_map"]
        assert index["metadata"]["total_size"] == total == sum(t.numel() * t.element_size() for t in got.values())


def test_merged_shards_load_in_plain_transformers(bases: dict[str, Path], tmp_path: Path) -> None:
    """The written files (our own safetensors writer) with the config: from_pretrained gives the merged model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.merge_write import write_config

    adapter = make_adapter(bases["gpt2"], "LoraConfig", CASES["gpt2 dora"][2], tmp_path / "adapter")
    found = plan(str(bases["gpt2"]), adapter)
    out = tmp_path / "out"
    out.mkdir()
    merge_shards(found, torch.float32, out)
    write_config(found, torch.float32, out, trust_remote_code=False)
    ids = torch.tensor([[1, 5, 9, 200, 3]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(str(out))(input_ids=ids).logits
        reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(bases["gpt2"])),
                                              str(adapter)).eval()(input_ids=ids).logits
    assert float((merged - reference).abs().max()) < 5e-5
    assert json.loads((out / "config.json").read_text())["use_cache"] is True


def test_what_does_not_stream_says_why(bases: dict[str, Path], tmp_path: Path) -> None:
    ia3 = make_adapter(bases["llama"], "IA3Config", dict(target_modules=["q_proj", "down_proj"],
                                                         feedforward_modules=["down_proj"]), tmp_path / "ia3")
    with pytest.raises(NotStreamable, match="IA3 adapter"):
        plan(str(bases["llama"]), ia3)
    dora_embedding = make_adapter(bases["llama"], "LoraConfig", dict(r=2, target_modules=["embed_tokens"],
                                                                     use_dora=True), tmp_path / "dora")
    with pytest.raises(NotStreamable, match="DoRA or a LoRA bias on an embedding"):
        plan(str(bases["llama"]), dora_embedding)
    lora = make_adapter(bases["llama"], "LoraConfig", dict(r=2, target_modules=["q_proj"]), tmp_path / "lora")
    bin_only = tmp_path / "bin-only"
    bin_only.mkdir()
    (bin_only / "config.json").write_text((bases["llama"] / "config.json").read_text())
    (bin_only / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(NotStreamable, match="no safetensors weights"):
        plan(str(bin_only), lora)
    with pytest.raises(NotStreamable, match="Hugging Face cache"):
        plan("nobody/no-such-model-anywhere", lora)
    quantised = tmp_path / "quantised"
    quantised.mkdir()
    for file in bases["llama"].iterdir():
        (quantised / file.name).symlink_to(file)
    config = json.loads((bases["llama"] / "config.json").read_text())
    (quantised / "config.json").unlink()
    (quantised / "config.json").write_text(json.dumps({**config, "quantization_config": {
        "quant_method": "bitsandbytes", "load_in_4bit": True}}))
    with pytest.raises(NotStreamable, match="pre-quantised"):
        plan(str(quantised), lora)


def test_a_hub_id_resolves_to_its_cached_snapshot(bases: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub base already downloaded: its snapshot folder in the Hugging Face cache is what the merge streams."""
    import shutil

    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--someone--tiny-llama"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(bases["llama"], snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert base_folder("someone/tiny-llama") == snapshot
    lora = make_adapter(bases["llama"], "LoraConfig", dict(r=2, target_modules=["q_proj"]), tmp_path / "lora")
    assert plan("someone/tiny-llama", lora).base_dir == snapshot


def test_memory_benchmark_at_toy_size() -> None:
    """benchmarks/merge_memory.py end to end on a toy model, so it cannot rot: both paths, the same tensors."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run([sys.executable, "benchmarks/merge_memory.py", "--hidden", "128", "--layers", "1",
                           "--shard-mb", "5", "--dtypes", "bf16"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))
    assert result["shards"] > 1 and [(row["dtype"], row["path"]) for row in result["rows"]] == [
        ("bf16", "streaming"), ("bf16", "in-memory")]
    assert all(row["equal_tensors"] and row["peak_rss_mb"] > 0 for row in result["rows"])
