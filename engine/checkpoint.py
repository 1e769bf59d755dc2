"""Checkpoints that resume exactly: trainable weights, optimizer, scheduler, grad scaler, RNG and loop position.

Every tensor file is loaded with `weights_only=True`; the Python RNG state is JSON. When the method's saved
weights already hold every trainable parameter (full fine-tuning), they are stored once, in `weights/`.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from engine.errors import EngineError
from engine.protocol import finite_json

STATE_FILE = "trainer_state.json"
WEIGHTS, TRAINABLE, OPTIMIZER, SCHEDULER, SCALER = "weights", "trainable.pt", "optimizer.pt", "scheduler.pt", "scaler.pt"
RNG_TENSORS, RNG_PYTHON = "rng.pt", "rng.json"


def trainable_names(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def safetensors_keys(folder: Path) -> dict[str, Path]:
    """Tensor name -> the *.safetensors file in `folder` holding it (headers only, nothing is loaded)."""
    from safetensors import safe_open

    where: dict[str, Path] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                where[key] = file
    return where


def _python_rng_to_json() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _python_rng_from_json(data: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = data
    return version, tuple(internal), gauss


def save_checkpoint(folder: Path, model: Any, impl: Any, optimizer: Any, scheduler: Any, state: dict[str, Any],
                    scaler: Any = None) -> Path:
    """Write a checkpoint into a temporary folder, then rename it; trainer_state.json marks it complete."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    impl.save(model, tmp / WEIGHTS)
    saved = safetensors_keys(tmp / WEIGHTS)
    if not all(name in saved for name in trainable_names(model)):  # adapters: the weights name them differently
        torch.save(trainable_state(model), tmp / TRAINABLE)
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER)
    torch.save(scheduler.state_dict(), tmp / SCHEDULER)
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / SCALER)
    torch.save({"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / RNG_TENSORS)
    (tmp / RNG_PYTHON).write_text(json.dumps(_python_rng_to_json()), encoding="utf-8")
    (tmp / STATE_FILE).write_text(json.dumps(finite_json(state), indent=2, allow_nan=False), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def _load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def _restore_trainable(folder: Path, model: Any) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        if (folder / TRAINABLE).is_file():
            for name, value in _load(folder / TRAINABLE).items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))
            return
        from safetensors import safe_open

        where = safetensors_keys(folder / WEIGHTS)
        missing = [n for n in trainable_names(model) if n not in where]
        if missing:
            raise EngineError("resume", f"{folder}: neither {TRAINABLE} nor the weights hold {missing[:3]}",
                              "the checkpoint is incomplete: resume from an earlier one or start a new run")
        for file in sorted(set(where.values())):
            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():
                    if name in params and params[name].requires_grad:
                        params[name].copy_(handle.get_tensor(name).to(params[name].device, params[name].dtype))


def load_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, scaler: Any = None) -> dict[str, Any]:
    """Restore a checkpoint into the already built model, optimizer, scheduler (and scaler); return the loop state."""
    _restore_trainable(folder, model)
    optimizer.load_state_dict(_load(folder / OPTIMIZER))
    scheduler.load_state_dict(_load(folder / SCHEDULER))
    if scaler is not None and (folder / SCALER).is_file():
        scaler.load_state_dict(_load(folder / SCALER))
    rng = _load(folder / RNG_TENSORS)
    if (folder / RNG_PYTHON).is_file():
        random.setstate(_python_rng_from_json(json.loads((folder / RNG_PYTHON).read_text(encoding="utf-8"))))
    elif "python" in rng:  # checkpoints written before rng.json
        random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))


def check_world(folder: Path, world_size: int) -> dict[str, Any]:
    """The checkpoint's loop state, after refusing one written by another number of processes."""
    saved = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    written = int(saved.get("world_size", 1))
    if written != world_size:
        raise EngineError("resume", f"{folder.name} was written by {written} process(es) and this run now has "
                          f"{world_size}: each step's batch is split between the processes, so the run cannot "
                          "continue exactly", f"resume with {written} process(es) in all "
                          "(hardware.distributed.num_processes x num_machines), or start a new run")
    return saved
