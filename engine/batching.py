"""Batches that waste little compute on padding: padded collation, length grouping and packing."""

from __future__ import annotations

import random
from typing import Any

import torch

from engine.data import IGNORE, Example


def pick_padding_reduction(setting: str, device_type: str) -> str:
    """`auto`: length grouping, the fastest correct way on CPU and on GPUs without varlen attention kernels."""
    if setting != "auto":
        return setting
    return "group_by_length"


def batch_order(examples: list[Example], batch_size: int, seed: int, epoch: int, mode: str) -> list[list[int]]:
    """Indices of each batch for one epoch, deterministic in (seed, epoch)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if mode in ("group_by_length", "packing"):
        mega = batch_size * 50
        grouped = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start:start + mega], key=lambda i: len(examples[i].input_ids), reverse=True)
            grouped += chunk
        batches = [grouped[i:i + batch_size] for i in range(0, len(grouped), batch_size)]
        rng.shuffle(batches)
        return batches
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def collate_padded(batch: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padding is masked out of attention and loss."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ex in enumerate(batch):
        n = len(ex.input_ids)
        ids[row, :n] = torch.tensor(ex.input_ids)
        labels[row, :n] = torch.tensor(ex.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def collate_packed(batch: list[Example]) -> dict[str, torch.Tensor]:
    """One row of concatenated examples with position_ids restarting per example and no attention_mask.

    Correct only with use_cache=False (transformers then derives per-example attention from position_ids);
    the first label of each example is ignored so no token predicts across a boundary.
    """
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for ex in batch:
        ids += ex.input_ids
        labels += [IGNORE] + ex.labels[1:]
        positions += list(range(len(ex.input_ids)))
    return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions])}


def make_batch(examples: list[Example], indices: list[int], mode: str, pad_id: int) -> dict[str, torch.Tensor]:
    batch = [examples[i] for i in indices]
    return collate_packed(batch) if mode == "packing" else collate_padded(batch, pad_id)


def real_tokens(batch: dict[str, Any]) -> int:
    """Non-padding tokens in a batch."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())
