"""IA³ through the engine: trains, saves a PEFT adapter that stock PEFT reloads to the same logits, and generates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.protocol import Finished, Log, RunStarted, Step
from methods.catalogue import get_catalogue
from methods.ia3.tests.support import build_on, ia3_layers
from tests.conftest import make_config, train

IDS = torch.tensor([[1, 5, 6, 7, 8, 9, 10, 11]])


def stock_peft(base_model: str, weights: Path):
    """The adapter in `weights` on a freshly loaded base, with PEFT's own loader (no lf-tui code)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import model_source

    base = AutoModelForCausalLM.from_pretrained(model_source(base_model))
    return PeftModel.from_pretrained(base, str(weights)).eval()


@pytest.mark.parametrize("arch", ["builtin", "gpt_neox"])  # GPT-2: in process below, and tests/test_architectures.py
def test_trains_saves_reloads_with_stock_peft_and_generates(arch: str, model_folders, store,
                                                            learnable_dataset) -> None:
    from peft import IA3Config

    from engine.generate import generate

    base_model = "builtin:tiny-llama" if arch == "builtin" else str(model_folders[arch])
    cfg = make_config("ia3", base_model=base_model, hardware={"mixed_precision": "no"}, data={"eval_split": 0},
                      training={"max_steps": 2, "batch_size": 2, "max_seq_length": 64, "learning_rate": 3e-2,
                                "lr_scheduler": "constant"})
    run, events, rc = train(store, cfg, learnable_dataset, timeout=120)
    assert rc == 0, (run.path / "engine.log").read_text()[-3000:]
    assert isinstance(events[0], RunStarted) and 0 < events[0].trainable_params < events[0].total_params / 100
    assert len([e for e in events if isinstance(e, Step)]) == 2
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    log = [e.message for e in events if isinstance(e, Log)]
    assert any('target_modules "auto"' in line for line in log), log

    model = stock_peft(base_model, run.weights_dir)
    assert isinstance(model.peft_config["default"], IA3Config)
    vectors = {name: layer.ia3_l["default"] for name, layer in ia3_layers(model).items()}
    assert len(vectors) == {"builtin": 3 * 4, "gpt_neox": 2 * 2}[arch]  # per block: 3 or 2
    assert sum(v.numel() for v in vectors.values()) == events[0].trainable_params
    assert all((v - 1).abs().max() > 1e-3 for v in vectors.values())  # every vector moved from its 1.0 start
    assert torch.isfinite(model(IDS).logits).all()

    result = generate(run, "Say the greeting.", max_new_tokens=3)  # reloaded as the app does
    assert isinstance(result["completion"], str)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "phi3"])
def test_saved_adapter_reloads_to_the_trained_logits(arch: str, model_folders, tmp_path: Path) -> None:
    folder = str(model_folders[arch])
    model, _ = build_on(folder)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    for _ in range(3):
        model(IDS, labels=IDS).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        trained = model(IDS).logits
        with model.disable_adapter():
            base = model(IDS).logits
    assert not torch.allclose(trained, base, atol=1e-4)  # the vectors changed the model

    get_catalogue().get("ia3").implementation().save(model, tmp_path / "weights")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (tmp_path / "weights").iterdir()}
    reloaded = stock_peft(folder, tmp_path / "weights")
    with torch.no_grad():
        assert torch.allclose(reloaded(IDS).logits, trained, atol=1e-5)
        merged = reloaded.merge_and_unload()  # folded into the base weights (GPT-2: Conv1D, fan_in_fan_out)
        assert torch.allclose(merged(IDS).logits, trained, atol=1e-4)
