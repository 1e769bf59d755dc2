"""Prefix tuning: num_virtual_tokens takes effect, and generation really uses the trained prefix."""

from __future__ import annotations

import torch

from methods.prefix_tuning import implementation as prefix
from tests.engine_builders import built, trainable


def test_num_virtual_tokens_changes_trainable_parameters() -> None:
    assert trainable("prefix_tuning", num_virtual_tokens=20) == 2 * trainable("prefix_tuning", num_virtual_tokens=10)
    assert trainable("prefix_tuning", num_virtual_tokens=10, prefix_projection=True, encoder_hidden_size=32) > \
        trainable("prefix_tuning", num_virtual_tokens=10)


def test_generation_uses_the_prefix() -> None:
    _, _, model, _ = built("prefix_tuning", num_virtual_tokens=8)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn_like(p))  # a "trained" prefix far from the initial one
    model.eval()
    ids = torch.tensor([[1, 40, 41, 42, 43]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        prefixed_logits = model(input_ids=ids, attention_mask=mask).logits[0, -1]
        base_logits = model.get_base_model()(input_ids=ids, attention_mask=mask).logits[0, -1]
        out = prefix.generate(model, ids, mask, max_new_tokens=1, do_sample=False, output_logits=True,
                              return_dict_in_generate=True, pad_token_id=0)
    first = out.logits[0][0]
    assert torch.allclose(first, prefixed_logits, atol=1e-4)
    assert not torch.allclose(first, base_logits, atol=1e-2)
