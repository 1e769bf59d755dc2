"""hardware.distributed without torch: the world size, the global batch, and the rules of what cannot work."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from methods.report import Report

PATH = "hardware.distributed"


def visible_gpus() -> int:
    """CUDA GPUs this process may use: NVML's count, narrowed by CUDA_VISIBLE_DEVICES (0 without a driver)."""
    import os

    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no library, no driver, no GPU
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return count
    ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return min(count, len(ids))


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@dataclass(frozen=True)
class World:
    """How many processes train, and how they split the work."""

    processes_per_machine: int
    num_machines: int
    strategy: str

    @property
    def size(self) -> int:
        return self.processes_per_machine * self.num_machines

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_of(cfg: Any, gpus: int | None = None) -> World:
    """The world of a validated config; "auto" counts the visible GPUs (at least one process)."""
    d = cfg.hardware.distributed
    per = d.num_processes
    if per == "auto":
        per = max(1, visible_gpus() if gpus is None else gpus)
    return World(int(per), d.num_machines, d.strategy)


def global_batch(cfg: Any, gpus: int | None = None) -> tuple[int, str]:
    """(examples per optimizer step, how it is made up): batch per process x processes x accumulation."""
    t, world = cfg.training, world_of(cfg, gpus)
    total = t.batch_size * world.size * t.gradient_accumulation_steps
    parts = [f"batch {t.batch_size}"]
    if world.size > 1:
        parts.append(f"{world.size} processes" + (f" ({world.num_machines} machines)" if world.num_machines > 1 else ""))
    if t.gradient_accumulation_steps > 1:
        parts.append(f"accumulation {t.gradient_accumulation_steps}")
    return total, " x ".join(parts)


def check_distributed(report: Report, cfg: Any, gpus: int | None = None) -> None:
    """Errors for settings that cannot run: a missing package, a machine layout that cannot rendezvous, more
    processes than GPUs on a GPU run, QLoRA with sharding that bitsandbytes' quantised weights do not support."""
    d, hw = cfg.hardware.distributed, cfg.hardware
    if d.strategy == "deepspeed" and not installed("deepspeed"):
        report.error(f"{PATH}.strategy", "deepspeed is not installed (the deepspeed package is needed for ZeRO)",
                     d.strategy, "pip install deepspeed, or use \"fsdp\" (ZeRO-3-like sharding) or \"ddp\"")
    if d.num_machines > 1 and not d.main_process_ip:
        report.error(f"{PATH}.main_process_ip", f"is needed with num_machines {d.num_machines}", None,
                     "the address of machine 0, reachable from every machine")
    if d.machine_rank >= d.num_machines:
        report.error(f"{PATH}.machine_rank", f"{d.machine_rank} is not below num_machines {d.num_machines}",
                     d.machine_rank, f"machine ranks go from 0 to {d.num_machines - 1}")
    world = world_of(cfg, gpus)
    if not world.distributed:
        return
    if hw.device == "mps":
        report.error(f"{PATH}.num_processes", "several processes cannot share an Apple GPU (no MPS backend)",
                     d.num_processes, "set num_processes to 1, or hardware.device to \"cpu\"")
    count = visible_gpus() if gpus is None else gpus
    cuda_run = hw.device.startswith("cuda") or (hw.device == "auto" and count > 0)
    if cuda_run and isinstance(d.num_processes, int) and d.num_processes > count:
        report.error(f"{PATH}.num_processes", f"{d.num_processes} processes but {count} GPU(s) visible on this "
                     "machine (one process per GPU)", d.num_processes,
                     f"set it to {max(count, 1)} or \"auto\", or hardware.device to \"cpu\" to train on CPU processes")
    if hw.device.startswith("cuda:"):
        report.error("hardware.device", f"{hw.device} pins one GPU, but {world.size} processes each take their own",
                     hw.device, "set hardware.device to \"cuda\" or \"auto\"")
    if world.strategy != "ddp" and not cuda_run:
        report.error(f"{PATH}.strategy", f"{world.strategy} shards over GPUs; a CPU run trains with ddp", world.strategy,
                     "set strategy to \"ddp\" for CPU processes")
    _qlora_rules(report, cfg, world)


def _qlora_rules(report: Report, cfg: Any, world: World) -> None:
    """bitsandbytes' quantised weights under sharding: 4-bit only, stored in the compute dtype, no CPU offload."""
    spec = cfg.method_specific
    quantised = getattr(spec, "load_in_4bit", None)
    if quantised is None or world.strategy == "ddp":
        return
    if not quantised:
        report.error("method_specific.load_in_4bit", f"8-bit weights cannot be sharded by {world.strategy}", False,
                     "use 4-bit QLoRA (load_in_4bit true) or strategy \"ddp\"")
        return
    d = cfg.hardware.distributed
    shards_weights = (d.zero_stage == 3 if world.strategy == "deepspeed"
                      else d.fsdp.sharding_strategy in ("full_shard", "hybrid_shard"))
    if shards_weights and not hasattr(spec, "bnb_4bit_quant_storage"):
        report.error(f"{PATH}.strategy", f"{world.strategy} would shard QLoRA's 4-bit weights, which this QLoRA stores "
                     "as uint8 beside bf16 weights (no bnb_4bit_quant_storage): they cannot be sharded together",
                     world.strategy, "use strategy \"ddp\", fsdp sharding_strategy \"shard_grad_op\" or deepspeed "
                     "zero_stage 2 (they shard gradients and optimizer states only)")
    if world.strategy == "fsdp" and d.fsdp.cpu_offload:
        report.error(f"{PATH}.fsdp.cpu_offload", "QLoRA's 4-bit weights cannot be offloaded by FSDP", True,
                     "set cpu_offload false (QLoRA is already small) or use strategy \"ddp\"")
    if getattr(spec, "bnb_4bit_compute_dtype", "auto") in ("float16", "float32"):
        report.error("method_specific.bnb_4bit_compute_dtype", "sharded 4-bit weights are stored in bf16, so the "
                     f"compute dtype must be bf16 under {world.strategy}", spec.bnb_4bit_compute_dtype,
                     "set it to \"bfloat16\" or \"auto\"")
