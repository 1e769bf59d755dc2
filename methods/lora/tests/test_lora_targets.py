"""target_modules "auto": PEFT's default when the model has those layers, else attention projections, else all linear."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch import nn
from transformers.pytorch_utils import Conv1D

from methods.lora import targets


class Toy(nn.Module):
    config: SimpleNamespace  # a plain attribute (nn.Module's own typing allows only tensors and modules)


def toy(model_type: str, **layers: nn.Module) -> nn.Module:
    """A module tree with a `config.model_type`, one block holding `layers`, and an lm_head."""
    model = Toy()
    model.config = SimpleNamespace(model_type=model_type)
    model.blocks = nn.ModuleList([nn.ModuleDict(layers)])
    model.lm_head = nn.Linear(4, 8)
    return model


def test_peft_default_used_when_the_model_has_those_layers() -> None:
    chosen, why = targets.auto_target_modules(toy("llama", q_proj=nn.Linear(4, 4), v_proj=nn.Linear(4, 4),
                                                  o_proj=nn.Linear(4, 4)))
    assert chosen == ["q_proj", "v_proj"] and "PEFT" in why


def test_unknown_type_falls_back_to_query_value_then_fused_then_all_linear() -> None:
    pair = toy("new-arch", query=nn.Linear(4, 4), key=nn.Linear(4, 4), value=nn.Linear(4, 4))
    assert targets.auto_target_modules(pair)[0] == ["query", "value"]
    # PEFT's llama default names layers this model lacks, so the fused projection wins
    fused = toy("llama", qkv_proj=nn.Linear(4, 12), o_proj=nn.Linear(4, 4))
    assert targets.auto_target_modules(fused)[0] == ["qkv_proj"]
    plain = toy("new-arch", fc_in=nn.Linear(4, 8), fc_out=Conv1D(4, 8))
    chosen, why = targets.auto_target_modules(plain)
    assert chosen == ["fc_in", "fc_out"] and "every linear layer" in why  # lm_head never


def test_no_linear_layer_is_an_error() -> None:
    model = toy("new-arch", norm=nn.LayerNorm(4))
    model.lm_head = nn.Identity()
    with pytest.raises(ValueError, match="no linear or Conv1D"):
        targets.auto_target_modules(model)


def test_explicit_targets_pass_through_and_conv1d_needs_fan_in_fan_out() -> None:
    model = toy("gpt2", c_attn=Conv1D(12, 4), c_proj=Conv1D(4, 4), fc=nn.Linear(4, 4))
    assert targets.resolve(model, ["c_proj"]) == (["c_proj"], "")
    chosen, note = targets.resolve(model, "auto")
    assert chosen == ["c_attn"] and "c_attn" in note and '"auto"' in note
    assert targets.all_conv1d(model, ["c_attn", "c_proj"]) and not targets.all_conv1d(model, ["c_attn", "fc"])
    assert not targets.all_conv1d(model, "all-linear")
    assert targets.adaptable_module_names(model) == ["c_attn", "c_proj", "fc"]
