"""Peak training memory of a config on a model, from the model's sizes alone: a breakdown by part (no torch).

The parts follow what the engine holds at its peak (the backward pass of the largest step):
- weights: the base model in the dtype the engine loads it in (4/8-bit linear layers when quantised, their
  quantisation constants apart), fp32 master weights for a method that trains the base; under autocast, the
  half-precision copies of fp32 weights that autograd keeps for backward;
- trainable: the method's own weights (fp32), gradients (fp32) and the optimizer's states;
- activations: what autograd keeps per token and layer for backward (the layer inputs only, plus one layer
  recomputed, under gradient checkpointing);
- logits: the engine's loss bypasses the output head and works on the target rows in chunks (engine/loss.py):
  the head's input rows with their gradient, and one chunk of fp32 logits with its gradient;
- overhead: the CUDA context and allocator slack on a GPU (none counted on CPU: the probe measures above the
  process's baseline after imports).
- sharding: with hardware.distributed, each process's share of what the strategy shards (FSDP full_shard and ZeRO-3:
  weights, gradients, optimizer states; shard_grad_op and ZeRO-2: gradients and optimizer states).
The coefficients are per token and layer, in units of hidden/intermediate widths; benchmarks/RESULTS.md shows
the planner against measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from methods.model_shape import ModelShape

GiB = 1024 ** 3
Device = Literal["cuda", "cpu"]

# Saved activations per token and layer, in values: (per hidden width, per intermediate width). A frozen base keeps
# what the non-linear ops and the adapters' inputs need; training the base keeps every matmul input as well.
# Measured on this project's CPU benchmark (benchmarks/RESULTS.md).
ACTIVATIONS_FROZEN = (9.5, 4.75)
ACTIVATIONS_FULL = (10.5, 4.75)
# Bytes per saved value: fp32 4; autocast over fp32 weights (a CPU run, or fp32 master weights on a GPU) keeps a
# mixture of fp32 values and their half-precision casts, measured at about 2.5; a half-precision base on a GPU 2.
AUTOCAST_OVER_FP32_BYTES = 2.5
# bitsandbytes' CPU 4-bit path dequantises every layer's weights to fp32 per matmul (forward and recompute) and the
# C allocator keeps the freed blocks and their bf16 casts: measured at about 6 bytes (4 + 2) per quantised weight.
CPU_DEQUANTISED_BYTES = 6.0
CHUNK_ROWS_BYTES = 64 * 1024 ** 2  # the loss's fp32 logits chunk (engine/loss.py)
CUDA_CONTEXT = 600 * 1024 ** 2  # CUDA context, cuBLAS workspace and kernels
ALLOCATOR_SLACK = 0.08  # fragmentation of PyTorch's caching allocator, as a share of the rest
UNCERTAINTY = {True: 0.15, False: 0.3}  # +- share of the total for a known / an unknown layout


@dataclass(frozen=True)
class Footprint:
    """What a method adds to or changes in the base model, as the planner needs it (a spec's `memory` returns it)."""

    trainable_params: int
    trains_base: bool = False  # the base's own weights train (fp32 masters, gradients, optimizer states on them)
    base_bits: float | None = None  # bits per base linear weight when quantised (4 or 8); None: the load dtype
    extra_activation_values: float = 0.0  # values per token and layer the method saves besides the base's
    extra_tokens: int = 0  # positions the method adds to every sequence (prefix tuning's virtual tokens)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Setting:
    """The run settings memory depends on, resolved from a config for a device."""

    device: Device
    precision: Literal["bf16", "fp16", "fp32"]
    batch_size: int
    seq_len: int
    gradient_checkpointing: bool
    optimizer: str
    pure_bf16: bool = False
    shards: int = 1  # processes the strategy shards over (1: every process holds everything, as DDP does)
    sharded: tuple[str, ...] = ()  # what it shards: "weights", "gradients", "optimizer"


@dataclass
class MemoryPlan:
    """The estimated peak and its parts, in bytes; `low`/`high` bound it."""

    parts: dict[str, int]
    setting: Setting
    params: int
    trainable_params: int
    uncertainty: float
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def low(self) -> int:
        return int(self.total * (1 - self.uncertainty))

    @property
    def high(self) -> int:
        return int(self.total * (1 + self.uncertainty))

    def margin(self, budget: int) -> int:
        """Bytes left under `budget` at the estimate (negative: short by that much)."""
        return budget - self.total

    def to_json(self, budget: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"total_bytes": self.total, "low_bytes": self.low, "high_bytes": self.high,
                               "uncertainty": self.uncertainty, "breakdown": dict(self.parts),
                               "params": self.params, "trainable_params": self.trainable_params,
                               "setting": vars(self.setting), "notes": list(self.notes)}
        if budget is not None:
            out.update(budget_bytes=budget, fits=self.total <= budget, margin_bytes=self.margin(budget))
        return out


def setting_for(cfg: Any, device: Device, cpu_bf16: bool = False, seq_len: int | None = None) -> Setting:
    """The memory-relevant settings of a validated config on `device` (mixed precision resolved as the engine does:
    bf16 on a GPU, bf16 on a CPU with native bf16, else fp32)."""
    mp = cfg.hardware.mixed_precision
    requested = {True: "auto", False: "no"}.get(mp, mp) if isinstance(mp, bool) else mp
    precision: Literal["bf16", "fp16", "fp32"] = "fp32"
    if requested != "no":
        if device == "cuda":
            precision = "fp16" if requested == "fp16" else "bf16"
        elif cpu_bf16 and requested in ("auto", "bf16"):
            precision = "bf16"
    t = cfg.training
    shards, sharded = sharding(cfg)
    return Setting(device=device, precision=precision, batch_size=t.batch_size, seq_len=seq_len or t.max_seq_length,
                   gradient_checkpointing=cfg.hardware.gradient_checkpointing, optimizer=t.optimizer,
                   pure_bf16=bool(getattr(cfg.hardware, "pure_bf16", False)), shards=shards, sharded=sharded)


def sharding(cfg: Any) -> tuple[int, tuple[str, ...]]:
    """Over how many processes, and what, hardware.distributed's strategy shards: FSDP full_shard and ZeRO-3 the
    weights, gradients and optimizer states; shard_grad_op and ZeRO-2 gradients and optimizer states; hybrid_shard
    fully within one machine; DDP and no_shard nothing."""
    from methods.distributed_rules import world_of

    d = getattr(getattr(cfg, "hardware", None), "distributed", None)
    if d is None:
        return 1, ()
    world = world_of(cfg)
    everything = ("weights", "gradients", "optimizer")
    if world.size == 1 or world.strategy == "ddp":
        return 1, ()
    if world.strategy == "deepspeed":
        return world.size, everything if d.zero_stage == 3 else everything[1:]
    return {"full_shard": (world.size, everything), "hybrid_shard": (world.processes_per_machine, everything),
            "shard_grad_op": (world.size, everything[1:]), "no_shard": (1, ())}[d.fsdp.sharding_strategy]


def optimizer_bytes_per_param(optimizer: str, state_bytes: int = 4) -> float:
    """Optimizer state bytes per trainable parameter: AdamW two moments, SGD momentum, Adafactor factored."""
    return {"adamw": 2 * state_bytes, "sgd": state_bytes, "adafactor": 0.1 * state_bytes,
            "adamw_8bit": 2.0, "paged_adamw_8bit": 2.0}.get(optimizer, 2 * state_bytes)


def plan_memory(shape: ModelShape, footprint: Footprint, setting: Setting) -> MemoryPlan:
    """The breakdown of peak training memory for `footprint` on `shape` under `setting`."""
    half = setting.precision in ("bf16", "fp16")
    gpu = setting.device == "cuda"
    # the base's weights (engine.models.base_weight_dtype): fp32 on CPU; on a GPU half for a frozen base
    master_half = footprint.trains_base and setting.pure_bf16 and setting.precision == "bf16"
    base_bytes = 2 if gpu and half and (not footprint.trains_base or master_half) else 4
    linear, other = shape.linear_params, shape.total_params - shape.linear_params
    parts: dict[str, int] = {}
    if footprint.base_bits:
        parts["weights"] = int(linear * footprint.base_bits / 8 + other * (2 if gpu else 4))
        # blockwise absmax: fp32 per 64 weights, or 8-bit with a second level (double quantisation)
        parts["quantisation constants"] = int(linear * (1 / 64 + 4 / (64 * 256)))
        if not gpu:
            parts["dequantised weights (CPU)"] = int(linear * CPU_DEQUANTISED_BYTES)
    else:
        parts["weights"] = shape.total_params * base_bytes
    if half and base_bytes == 4 and not footprint.base_bits:
        # autocast casts fp32 weights to the compute dtype per matmul, and autograd keeps each copy for backward
        # (a trained weight's copy is cached for the step): 2 bytes per linear and head weight
        parts["autocast weight copies"] = (linear + shape.head_params) * 2
    trainable = footprint.trainable_params
    own_bytes = base_bytes if footprint.trains_base else 4
    parts["trainable weights"] = 0 if footprint.trains_base else trainable * 4
    parts["gradients"] = trainable * own_bytes
    parts["optimizer states"] = int(trainable * optimizer_bytes_per_param(setting.optimizer, own_bytes))
    tokens = setting.batch_size * (setting.seq_len + footprint.extra_tokens)
    act_bytes: float = 4.0
    if half:  # the residual stream is in the base's dtype: fp32 weights under autocast keep both kinds
        act_bytes = 2.0 if base_bytes == 2 or (footprint.base_bits and gpu) else AUTOCAST_OVER_FP32_BYTES
    per_h, per_i = ACTIVATIONS_FULL if footprint.trains_base else ACTIVATIONS_FROZEN
    layer = tokens * ((per_h + footprint.extra_activation_values) * shape.hidden_size
                      + per_i * shape.intermediate_size) * act_bytes
    if setting.gradient_checkpointing:
        residual = 2 if gpu and half else 4
        parts["activations"] = int(shape.num_layers * tokens * shape.hidden_size * residual + layer)
    else:
        parts["activations"] = int(shape.num_layers * layer)
    rows = setting.batch_size * setting.seq_len
    chunk = min(rows, max(1, CHUNK_ROWS_BYTES // (shape.vocab_size * 4)))
    # the engine's chunked loss (engine/loss.py): the head's input rows and their gradient, one fp32 chunk of logits
    # with its softmax and gradient; never the batch's full logits
    parts["logits and loss"] = int(rows * shape.hidden_size * act_bytes * 2 + chunk * shape.vocab_size * 4 * 3)
    share_out(parts, setting)
    base = sum(parts.values())
    parts["runtime overhead"] = int(CUDA_CONTEXT + ALLOCATOR_SLACK * base) if gpu else 0
    notes = list(footprint.notes)
    if not shape.known_layout:
        notes.append(f"model type {shape.model_type!r} is laid out as a Llama here: the estimate is rougher")
    return MemoryPlan(parts=parts, setting=setting, params=shape.total_params, trainable_params=trainable,
                      uncertainty=UNCERTAINTY[shape.known_layout], notes=notes)


SHARDED_PARTS = {"weights": ("weights", "quantisation constants", "trainable weights"), "gradients": ("gradients",),
                 "optimizer": ("optimizer states",)}


def share_out(parts: dict[str, int], setting: Setting) -> None:
    """Each process's share of what the strategy shards (the rest, activations above all, every process holds)."""
    if setting.shards <= 1:
        return
    for kind in setting.sharded:
        for name in SHARDED_PARTS[kind]:
            if name in parts:
                parts[name] = -(-parts[name] // setting.shards)


def parse_size(text: str) -> int:
    """'24GiB', '24GB', '80G', '512MiB', '1.5TiB' or plain bytes -> bytes (GB and G are read as GiB, as GPUs are sold)."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a size: write e.g. 24GiB, 80GB or 512MiB")
    value, unit = float(match.group(1)), match.group(2).upper()
    return int(value * 1024 ** " KMGT".index(unit or " ")) if unit else int(value)
