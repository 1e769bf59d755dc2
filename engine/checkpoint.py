"""Checkpoints that resume exactly: trainable weights, optimizer, scheduler, grad scaler, RNG and loop position.

Every tensor file is loaded with `weights_only=True`; the Python RNG state is JSON. When the method's saved
weights already hold every trainable parameter (full fine-tuning), they are stored once, in `weights/`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from engine.errors import EngineError, disk_error, kept_note
from engine.protocol import finite_json
from lf_common.files import follow_umask

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
    """Write a checkpoint into a temporary folder, then rename it; trainer_state.json marks it complete.

    A write that fails (a full disk, a read-only one) leaves no half-written folder: the temporary one is
    removed and the checkpoints already complete stay as they were (a DiskError says which is kept)."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    try:
        _write_checkpoint(tmp, model, impl, optimizer, scheduler, state, scaler)
        follow_umask(tmp)  # safetensors writes 0600: a checkpoint is shared as the run's other files are
        swap_in(tmp, folder)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        error = disk_error(exc, f"writing checkpoint {folder.name} into {folder.parent} failed", kept_note(folder.parent))
        if error is None:
            raise
        raise error from exc
    return folder


def _write_checkpoint(tmp: Path, model: Any, impl: Any, optimizer: Any, scheduler: Any, state: dict[str, Any],
                      scaler: Any) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    impl.save(model, tmp / WEIGHTS)
    saved = safetensors_keys(tmp / WEIGHTS)
    if not all(name in saved for name in trainable_names(model)):  # adapters: the weights name them differently
        save_tensors(trainable_state(model), tmp / TRAINABLE)
    save_tensors(optimizer.state_dict(), tmp / OPTIMIZER)
    save_tensors(scheduler.state_dict(), tmp / SCHEDULER)
    if scaler is not None:
        save_tensors(scaler.state_dict(), tmp / SCALER)
    save_tensors({"torch": torch.get_rng_state(),
                  "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / RNG_TENSORS)
    write_synced(tmp / RNG_PYTHON, json.dumps(_python_rng_to_json()))
    sync_tree(tmp / WEIGHTS)  # the method's own writer: on disk before the folder is marked complete
    write_synced(tmp / STATE_FILE, json.dumps(finite_json(state), indent=2, allow_nan=False))


class _Sink:
    """A file torch.save writes through, keeping the OSError of a failed write (torch's own C++ writer reports
    it as "unexpected pos ...", without the cause)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return int(self.raw.write(data))
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.raw.flush()


def save_tensors(obj: Any, path: Path) -> None:
    """torch.save to `path`, flushed to disk; a failed write raises its OSError (ENOSPC, EROFS, ...)."""
    with open(path, "wb") as raw:
        sink = _Sink(raw)
        try:
            torch.save(obj, sink)  # type: ignore[arg-type]  # a file-like object: write and flush
        except RuntimeError as exc:
            if sink.error is not None:
                raise sink.error from exc
            raise
        raw.flush()
        os.fsync(raw.fileno())


def write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def sync_tree(folder: Path) -> None:
    """fsync every file under `folder` (a delayed write error, e.g. no space on a network disk, shows here)."""
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def swap_in(tmp: Path, folder: Path) -> None:
    """Rename the complete `tmp` to `folder`; an older `folder` (the same step saved again) is moved aside first
    and removed only once the new one is in place."""
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    try:
        tmp.rename(folder)
    except OSError:
        if old.exists() and not folder.exists():
            old.rename(folder)  # the one saved before stays complete
        raise
    shutil.rmtree(old, ignore_errors=True)


def save_weights(impl: Any, model: Any, weights_dir: Path) -> None:
    """The method's save into a temporary folder, renamed to `weights_dir` once complete (a full disk leaves no
    half-written weights/: a DiskError says so)."""
    tmp = weights_dir.with_name(f".{weights_dir.name}.tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        impl.save(model, tmp)
        sync_tree(tmp)
        follow_umask(tmp)  # safetensors writes 0600: the trained weights are shared as the run's other files are
        swap_in(tmp, weights_dir)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        error = disk_error(exc, f"writing the trained weights into {weights_dir} failed",
                           kept_note(weights_dir.parent / "checkpoints"))
        if error is None:
            raise
        raise error from exc


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
    restore_scaler(folder, scaler)
    rng = _load(folder / RNG_TENSORS)
    if (folder / RNG_PYTHON).is_file():
        random.setstate(_python_rng_from_json(json.loads((folder / RNG_PYTHON).read_text(encoding="utf-8"))))
    elif "python" in rng:  # checkpoints written before rng.json
        random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))


def restore_scaler(folder: Path, scaler: Any) -> None:
    """The fp16 loss scale (and its growth tracker) as saved, so a resumed run scales as the uninterrupted one."""
    if scaler is not None and (folder / SCALER).is_file():
        scaler.load_state_dict(_load(folder / SCALER))


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
