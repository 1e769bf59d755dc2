"""Config format versions and the migrations that bring older configs up to date."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from methods.config_models import CONFIG_VERSION

Migration = Callable[[dict[str, Any]], list[str]]


def _v1_to_v2(cfg: dict[str, Any]) -> list[str]:
    """1.0 used Hugging Face TrainingArguments names; 2.0 uses the design's names."""
    notes: list[str] = []
    training = cfg.get("training")
    if isinstance(training, dict):
        for old, new in (
            ("num_train_epochs", "epochs"),
            ("per_device_train_batch_size", "batch_size"),
            ("lr_scheduler_type", "lr_scheduler"),
        ):
            if old in training:
                training.setdefault(new, training.pop(old))
                notes.append(f"training.{old} -> training.{new}")
    if "max_seq_length" in cfg:
        cfg.setdefault("training", {})
        if isinstance(cfg["training"], dict):
            cfg["training"].setdefault("max_seq_length", cfg.pop("max_seq_length"))
            notes.append("max_seq_length -> training.max_seq_length")
    hardware = cfg.get("hardware")
    if isinstance(hardware, dict) and ("fp16" in hardware or "bf16" in hardware):
        fp16, bf16 = bool(hardware.pop("fp16", False)), bool(hardware.pop("bf16", False))
        hardware.setdefault("mixed_precision", "bf16" if bf16 else "fp16" if fp16 else "no")
        notes.append(f"hardware.fp16/bf16 -> hardware.mixed_precision={hardware['mixed_precision']!r}")
    return notes


MIGRATIONS: dict[str, tuple[str, Migration]] = {"1.0": ("2.0", _v1_to_v2)}
KNOWN_VERSIONS = ("1.0", CONFIG_VERSION)


class MigrationError(ValueError):
    """The config's version cannot be migrated."""


def migrate(cfg: dict[str, Any]) -> tuple[dict[str, Any], str | None, list[str]]:
    """Bring a method_config dict to the current version; return (config, old version or None, notes)."""
    version = cfg.get("version", CONFIG_VERSION)
    if not isinstance(version, str):
        raise MigrationError(f"version must be a string such as {CONFIG_VERSION!r}, got {version!r}")
    if version == CONFIG_VERSION:
        return cfg, None, []
    if version not in MIGRATIONS:
        raise MigrationError(
            f"unknown config version {version!r}; this lf-tui reads {', '.join(KNOWN_VERSIONS)} "
            "(a newer file needs a newer lf-tui)"
        )
    out = copy.deepcopy(cfg)
    notes: list[str] = []
    current = version
    while current != CONFIG_VERSION:
        target, step = MIGRATIONS[current]
        notes += step(out)
        out["version"] = current = target
    return out, version, notes
