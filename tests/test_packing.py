"""Packing is exact: a packed row's logits and LoRA gradients equal the per-example ones (< 1e-4)."""

from __future__ import annotations

import pytest
import torch

from engine.batching import collate_packed, collate_padded
from engine.data import Example
from tests.engine_builders import built


def _examples() -> list[Example]:
    g = torch.Generator().manual_seed(0)
    out = []
    for n in (7, 13, 5, 21):
        ids = torch.randint(3, 500, (n,), generator=g).tolist()
        out.append(Example(ids, ids))
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logits_and_lora_grads_match_per_example(attn: str) -> None:
    _, _, model, _ = built("lora", target_modules="all-linear", lora_dropout=0.0)
    model.base_model.model.config._attn_implementation = attn
    with torch.no_grad():  # LoRA B starts at zero; make the adapters matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    examples = _examples()
    packed = collate_packed(examples)
    model.zero_grad()
    out = model(**packed, use_cache=False)
    out.loss.backward()
    packed_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    packed_logits = out.logits[0]

    model.zero_grad()
    n_targets = sum(len(e.input_ids) - 1 for e in examples)
    offset = 0
    for ex in examples:
        batch = collate_padded([ex], pad_id=0)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
        n = len(ex.input_ids)
        assert (logits[0] - packed_logits[offset:offset + n]).abs().max() < 1e-4
        offset += n
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], batch["labels"][0, 1:], reduction="sum") / n_targets
        loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert (p.grad - packed_grads[name]).abs().max() < 1e-4, name
