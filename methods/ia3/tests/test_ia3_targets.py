"""IA³ targets: "auto" scales keys, values and the feed-forward input per architecture; feed-forward names are checked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from torch import nn

from engine.errors import EngineError
from methods.ia3 import targets
from methods.ia3.tests.support import build_on, ia3_layers
from methods.validation import validate_config
from tests.tiny_models import ARCHITECTURES

# what "auto" scales (feed-forward ones: their input) on each architecture
AUTO = {
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen2": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "gpt2": (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
    "gpt_neox": (["query_key_value", "dense_4h_to_h"], ["dense_4h_to_h"]),
    "phi3": (["qkv_proj", "down_proj"], ["down_proj"]),
    "mistral": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "gemma": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
}


def scaled_as(full: str, names: list[str]) -> str:
    return next(name for name in names if targets.matches(full, name))


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_auto_scales_keys_values_and_the_feedforward_input(arch: str, model_folders) -> None:
    model, log = build_on(str(model_folders[arch]))
    expected, feedforward = AUTO[arch]
    layers = ia3_layers(model)
    assert len(layers) == len(expected) * 2  # each name once per block, two blocks
    assert {scaled_as(full, expected) for full in layers} == set(expected)
    for full, layer in layers.items():
        is_ff = scaled_as(full, expected) in feedforward
        assert layer.is_feedforward == is_ff, full
        base, vector = layer.get_base_layer(), layer.ia3_l["default"]
        width = base.weight.shape[0 if is_ff else 1] if arch == "gpt2" else base.weight.shape[1 if is_ff else 0]
        assert vector.numel() == width and vector.requires_grad  # the input of a feed-forward layer, else the output
    assert any('"auto"' in line and ", ".join(expected) in line for line in log), log
    config = model.peft_config["default"]
    assert config.target_modules == set(expected) and config.feedforward_modules == set(feedforward)
    assert config.fan_in_fan_out == (arch == "gpt2")  # GPT-2's layers are Conv1D
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(layer.ia3_l["default"].numel() for layer in layers.values())


def test_builtin_model_auto_and_an_explicit_list() -> None:
    model, _ = build_on("builtin:tiny-llama")
    assert {full.rsplit(".", 1)[-1] for full in ia3_layers(model)} == {"k_proj", "v_proj", "down_proj"}
    # a list with feedforward_modules "auto": only the down projection's input is scaled (up_proj: its output)
    model, log = build_on("builtin:tiny-llama", target_modules=["q_proj", "up_proj", "down_proj"])
    flags = {full.rsplit(".", 1)[-1]: layer.is_feedforward for full, layer in ia3_layers(model).items()}
    assert flags == {"q_proj": False, "up_proj": False, "down_proj": True}
    assert any('feedforward_modules "auto": down_proj' in line for line in log), log


def test_gpt2_suffix_names_pick_the_mlp_projection(model_folders) -> None:
    model, _ = build_on(str(model_folders["gpt2"]), target_modules=["c_attn", "mlp.c_proj"],
                        feedforward_modules=["mlp.c_proj"])
    layers = ia3_layers(model)
    assert sorted(n.split("transformer.")[1] for n in layers if n.endswith("c_proj")) == ["h.0.mlp.c_proj",
                                                                                         "h.1.mlp.c_proj"]
    assert all(layer.is_feedforward == name.endswith("mlp.c_proj") for name, layer in layers.items())


@pytest.mark.parametrize("arch", ["gpt2", "phi3"])
def test_unknown_layer_names_fail_listing_the_layers_that_exist(arch: str, model_folders) -> None:
    with pytest.raises(EngineError) as info:
        build_on(str(model_folders[arch]), target_modules=[AUTO[arch][0][0], "nope"])
    error = info.value
    assert error.kind == "config" and "['nope']" in error.message and arch in error.message
    assert AUTO[arch][0][0] in error.hint and "lm_head" not in error.hint and '"auto"' in error.hint


def test_feedforward_outside_the_targets_is_a_validation_error() -> None:
    specific = {"target_modules": ["k_proj", "v_proj", "down_proj"], "feedforward_modules": ["down_proj", "up_proj"]}
    doc = {"method": "ia3", "method_specific": specific}
    report = validate_config(doc).report
    assert [e.path for e in report.errors] == ["method_specific.feedforward_modules"]
    error = report.errors[0]
    assert "['up_proj']" in error.message and "up_proj" in error.hint and "target_modules" in error.hint
    specific["feedforward_modules"] = ["down_proj"]
    assert validate_config(doc).report.ok
    # against "auto" targets the names are known only once the model is: the engine checks them
    assert validate_config({"method": "ia3", "method_specific": {"feedforward_modules": ["up_proj"]}}).report.ok


def test_feedforward_outside_the_auto_targets_fails_at_start() -> None:
    with pytest.raises(EngineError) as info:
        build_on("builtin:tiny-llama", feedforward_modules=["up_proj"])
    error = info.value
    assert error.kind == "config" and error.message.startswith("method_specific.feedforward_modules: ['up_proj']")
    assert "k_proj, v_proj, down_proj" in error.message and "subset" in error.hint


class Toy(nn.Module):
    config: SimpleNamespace  # a plain attribute (nn.Module's own typing allows only tensors and modules)


def toy(model_type: str, **layers: nn.Module) -> nn.Module:
    """A module tree with a `config.model_type`, one block holding `layers`, and an lm_head."""
    model = Toy()
    model.config = SimpleNamespace(model_type=model_type)
    model.blocks = nn.ModuleList([nn.ModuleDict(layers)])
    model.lm_head = nn.Linear(4, 8)
    return model


def test_auto_falls_back_to_peft_then_fails_clearly() -> None:
    # OPT: no feed-forward block, fc2 right in the decoder layer; PEFT's opt default (q, k, fc2) differs: noted
    opt = toy("opt", q_proj=nn.Linear(4, 4), k_proj=nn.Linear(4, 4), v_proj=nn.Linear(4, 4), fc1=nn.Linear(4, 16),
              fc2=nn.Linear(16, 4))
    chosen, feedforward, why = targets.auto_targets(opt)
    assert (chosen, feedforward) == (["k_proj", "v_proj", "fc2"], ["fc2"]) and "q_proj, k_proj, fc2" in why
    # names lf-tui does not know, but PEFT knows the model type and the model has its layers: PEFT's default
    deberta = toy("deberta", in_proj=nn.Linear(4, 12), output=nn.ModuleDict({"dense": nn.Linear(16, 4)}))
    chosen, feedforward, why = targets.auto_targets(deberta)
    assert (chosen, feedforward) == (["in_proj", "output.dense"], ["output.dense"]) and "PEFT's default" in why
    unknown = toy("new-arch", mix=nn.Linear(4, 4))
    with pytest.raises(ValueError, match="no attention key/value"):
        targets.auto_targets(unknown)


@pytest.mark.parametrize("arch,specific", [(arch, {}) for arch in ("llama", "gpt2", "gpt_neox", "phi3")] + [
    ("llama", {"target_modules": ["q_proj", "up_proj", "down_proj"]}),
    ("gpt2", {"target_modules": ["c_attn", "mlp.c_proj"], "feedforward_modules": []}),
])
def test_memory_planner_counts_the_vectors_the_model_gets(arch: str, specific: dict[str, Any], model_folders) -> None:
    from engine.planning import estimate
    from tests.conftest import make_config

    folder = str(model_folders[arch])
    model, _ = build_on(folder, **specific)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    plan = estimate(make_config("ia3", base_model=folder, method_specific=specific), "cpu")[0]
    assert plan.trainable_params == trainable
