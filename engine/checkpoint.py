"""Checkpoints that resume exactly: trainable weights, optimizer, scheduler, RNG and loop position."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "trainer_state.json"


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(folder: Path, model: Any, impl: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> Path:
    """Write a checkpoint into a temporary folder, then rename it; trainer_state.json marks it complete."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    impl.save(model, tmp / "weights")
    torch.save(trainable_state(model), tmp / "trainable.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save({"python": random.getstate(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "rng.pt")
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def load_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore a checkpoint into the already built model, optimizer and scheduler; return the loop state."""
    trainable = torch.load(folder / "trainable.pt", map_location="cpu", weights_only=True)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in trainable.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True))
    rng = torch.load(folder / "rng.pt", map_location="cpu", weights_only=False)
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
