"""`lf-tui fuse` on a bf16 base: the combination runs on fp32 copies of the adapters, the fused adapter is written in
the parents' dtype, so `cat` stays the exact weighted sum of the updates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.fuse import fuse
from engine.models import model_source
from engine.run_store import RunDir, RunStore
from tests.conftest import make_config
from tests.test_fuse import TOLERANCE, adapter, fused_run, scaling, total


@pytest.fixture(scope="module")
def bf16_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in model saved in bf16 (its config.json says bfloat16: the dtype a fusion loads it in)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("fuse-bf16") / "tiny-bf16"
    source = model_source("builtin:tiny-llama")
    AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(folder))
    assert json.loads((folder / "config.json").read_text()).get("dtype") == "bfloat16"
    return folder


def parent(store: RunStore, base: Path, seed: int, **lora: object) -> RunDir:
    """A completed LoRA run on `base` whose weights are a random fp32 adapter (B non-zero: a real update), as a
    run trained with the default mixed precision stores it (trainable weights fp32 on a bf16 base)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    cfg = make_config("lora", base_model=str(base), method_specific=lora)
    run = store.create("lora", cfg.model_dump(mode="json"), {"dataset": "synthetic"})
    torch.manual_seed(seed)
    spec = cfg.method_specific
    config = LoraConfig(r=spec.r, lora_alpha=spec.lora_alpha, use_rslora=spec.use_rslora, init_lora_weights=False,
                        target_modules=["q_proj", "v_proj"])
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.bfloat16), config)
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    model.save_pretrained(str(run.weights_dir), safe_serialization=True)
    (run.path / "summary.json").write_text(json.dumps({"status": "completed", "data_format": "alpaca"}))
    return run


def test_cat_fusion_on_a_bf16_base_is_exact_and_keeps_the_parents_dtype(bf16_base: Path, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    a = parent(store, bf16_base, 1, r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"])
    r8 = parent(store, bf16_base, 2, r=8, lora_alpha=32, use_rslora=True, target_modules=["q_proj", "v_proj"])
    weights = [0.7, -0.5]
    fused = fused_run(fuse([a.path, r8.path], weights, "cat", runs_dir=store.root))
    _, got = adapter(fused.weights_dir)
    parents = [adapter(a.weights_dir), adapter(r8.weights_dir)]
    assert {t.dtype for _, tensors in parents for pair in tensors.values() for t in pair} == {torch.float32}
    assert {t.dtype for pair in got.values() for t in pair} == {torch.float32}
    for name, (fa, fb) in got.items():
        exact = total(w * scaling(c) * t[name][1] @ t[name][0] for w, (c, t) in zip(weights, parents))
        assert exact.abs().max() > 1e-3  # a real update, not 0 == 0
        assert torch.allclose(fb @ fa, exact, atol=TOLERANCE), (name, float((fb @ fa - exact).abs().max()))
