"""Token-weighted causal-LM loss: summed over real target tokens, so accumulation equals one big batch."""

from __future__ import annotations

from typing import Any

import torch

from engine.data import IGNORE


def target_tokens(batch: dict[str, Any]) -> int:
    """Tokens that carry a loss: labels that are not ignored after the causal shift (next-token targets)."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def summed_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of the next-token cross-entropies over the target tokens (fp32, whatever the logits' dtype).

    Only the rows of target positions are gathered and upcast, so a masked prompt costs no fp32 logits.
    """
    shift_labels = labels[:, 1:].to(logits.device)
    mask = shift_labels != IGNORE
    picked = logits[:, :-1, :][mask]
    return torch.nn.functional.cross_entropy(picked.float(), shift_labels[mask], reduction="sum")
