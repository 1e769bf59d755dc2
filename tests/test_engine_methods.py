"""Every method trains the built-in tiny model on CPU, its loss falls, and its saved weights reload and generate."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from engine.protocol import EventReader, Finished, RunStarted, Step
from engine.run_store import ENGINE, SUMMARY
from methods.catalogue import get_catalogue
from methods.method_info import Demo
from tests.conftest import ROOT, make_config, train


def demo(method: str) -> Demo:
    """The spec's demo settings (else its quick-train learning rate): each method says how it learns visibly."""
    info = get_catalogue().get(method).info
    if info.demo is not None:
        return info.demo
    assert info.demo_learning_rate, f"{method}'s spec declares neither demo nor demo_learning_rate"
    return Demo(learning_rate=info.demo_learning_rate)


@pytest.mark.parametrize("method", get_catalogue().names())
def test_method_trains_saves_and_generates(method: str, store, learnable_dataset) -> None:
    settings = demo(method)
    cfg = make_config(method, training={"learning_rate": settings.learning_rate, "max_steps": 15,
                                        "lr_scheduler": "constant"},
                      data={"eval_split": 0.2}, method_specific=dict(settings.method_specific))
    run, events, rc = train(store, cfg, learnable_dataset)
    assert rc == 0, (run.path / "engine.log").read_text()[-3000:]
    assert isinstance(events[0], RunStarted) and events[0].method == method
    assert 0 < events[0].trainable_params <= events[0].total_params
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert len(losses) == 15
    assert sum(losses[-3:]) / 3 < 0.75 * sum(losses[:3]) / 3, losses
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    assert json.loads((run.path / SUMMARY).read_text())["total_steps"] == 15
    assert (run.path / ENGINE).exists() and any(run.weights_dir.glob("*.safetensors"))
    # the stream on disk is the stream on the pipe, and validates against the protocol
    reader = EventReader()
    on_disk = list(reader.feed_all(run.events_path.read_bytes().splitlines()))
    assert reader.skipped == 0 and [e.type for e in on_disk] == [e.type for e in events]
    # reload the saved weights in a fresh process and generate
    proc = subprocess.run([sys.executable, "-m", "engine", "generate", str(run.path), "--prompt", "Say the greeting.",
                           "--max-new-tokens", "6", "--compare-base"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and set(result) == {"prompt", "completion", "base_completion"}, proc.stderr[-2000:]
    assert result["completion"] != result["base_completion"]


def test_peft_adapters_load_with_peft(store, learnable_dataset) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import model_source

    run, _, rc = train(store, make_config("lora", training={"max_steps": 2}), learnable_dataset)
    assert rc == 0
    base = AutoModelForCausalLM.from_pretrained(model_source("builtin:tiny-llama"))
    model = PeftModel.from_pretrained(base, str(run.weights_dir))
    assert any("lora_A" in n for n, _ in model.named_parameters())
    assert torch.isfinite(model(torch.tensor([[1, 5, 6]])).logits).all()
