"""Pydantic models of the base config every method extends (the single source of truth)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

CONFIG_VERSION = "2.0"


class Section(BaseModel):
    """A config section: unknown keys are left to methods.validation (errors there; warnings when lenient)."""

    model_config = ConfigDict(extra="ignore", validate_default=True)


class Training(Section):
    epochs: int = Field(3, ge=1, le=1000, description="passes over the training data")
    max_steps: int = Field(-1, ge=-1, description="stop after this many optimizer steps; -1 means use epochs")
    batch_size: int = Field(4, ge=1, le=4096, description="examples per forward pass")
    learning_rate: float = Field(2e-4, gt=0, le=1.0, description="peak learning rate")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up steps before the schedule (constant too)")
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024, description="micro-batches per optimizer step")
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping norm; 0 disables clipping")
    weight_decay: float = Field(0.0, ge=0, le=1.0, description="decoupled weight decay (AdamW)")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "polynomial"] = Field(
        "linear", description="learning-rate schedule after warm-up"
    )
    optimizer: Literal["adamw", "adamw_8bit", "paged_adamw_8bit", "sgd", "adafactor"] = Field(
        "adamw", description="adamw (fp32 states, 8 bytes a parameter), adamw_8bit / paged_adamw_8bit (bitsandbytes: "
        "2 bytes; paged moves states to CPU under pressure, CUDA only), sgd (momentum, 4 bytes), adafactor (factored)"
    )
    seed: int = Field(42, ge=0, description="random seed for weights, data order and dropout")
    max_seq_length: int = Field(512, ge=8, le=131072, description="longer examples are truncated")
    padding_reduction: Literal["auto", "group_by_length", "packing", "off"] = Field(
        "auto", description="how batches avoid padding; auto picks the fastest correct way for the device"
    )


class Fsdp(Section):
    sharding_strategy: Literal["full_shard", "shard_grad_op", "hybrid_shard", "no_shard"] = Field(
        "full_shard", description="full_shard: weights, gradients and optimizer states; shard_grad_op: gradients and "
        "optimizer states; hybrid_shard: full_shard within a machine, replicated across machines"
    )
    auto_wrap_decoder_layer: bool = Field(True, description="wrap each decoder layer as its own FSDP unit")
    cpu_offload: bool = Field(False, description="keep sharded weights on the CPU between uses")


class Distributed(Section):
    num_processes: Union[Annotated[int, Field(ge=1, le=1024)], Literal["auto"]] = Field(
        1, description="training processes on each machine (one per GPU); auto: every visible GPU"
    )
    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp", description="ddp: a full copy per process; fsdp: sharded (see fsdp); deepspeed: ZeRO (zero_stage)"
    )
    fsdp: Fsdp = Field(default_factory=Fsdp)
    zero_stage: Literal[2, 3] = Field(
        2, description="DeepSpeed ZeRO stage: 2 shards gradients and optimizer states, 3 the weights too"
    )
    num_machines: int = Field(1, ge=1, le=1024, description="machines taking part (each runs lf-tui train --node-rank N)")
    machine_rank: int = Field(0, ge=0, le=1023, description="this machine's rank, 0 on the main one (--node-rank)")
    main_process_ip: Optional[str] = Field(None, description="address of machine 0 (needed with num_machines > 1)")
    main_process_port: Optional[int] = Field(
        None, ge=1, le=65535, description="rendezvous port on machine 0; default: a free port (29500 across machines)"
    )


class Hardware(Section):
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto, cpu, mps, cuda or cuda:N"
    )
    mixed_precision: Union[bool, Literal["auto", "bf16", "fp16", "no"]] = Field(
        "auto", description="true/auto: bf16 or fp16 where the device runs it fast; false/no: fp32"
    )
    gradient_checkpointing: bool = Field(False, description="recompute activations to save memory")
    dataloader_num_workers: int = Field(0, ge=0, le=64, description="data loading worker processes")
    pure_bf16: bool = Field(
        False, description="full fine-tuning on a bf16 GPU only: weights and optimizer states in bf16 (half the memory)"
    )
    distributed: Distributed = Field(default_factory=Distributed)


class Monitoring(Section):
    logging_steps: int = Field(1, ge=1, description="emit a step event every N optimizer steps")
    eval_steps: int = Field(50, ge=0, description="evaluate every N steps; 0 evaluates only at the end")
    save_steps: int = Field(
        100, ge=0, description="checkpoint every N steps and at each new best eval loss; 0: only when cancelled"
    )
    save_total_limit: int = Field(3, ge=0, description="keep the newest N checkpoints (and the best-eval one); 0 keeps all")
    early_stopping_patience: int = Field(
        0, ge=0, description="stop after N evaluations without a better eval loss (the best weights are kept); 0 never"
    )
    loss_spike_factor: float = Field(
        0.0, ge=0, description="stop as diverged when a step's loss exceeds N x the recent average; 0 disables"
    )
    system_interval_s: float = Field(2.0, gt=0, le=3600, description="seconds between system events")
    eval_tasks: list[str] = Field(
        default_factory=list, description="multiple-choice task files (or `sample`) scored at each evaluation"
    )
    wandb_project: Optional[str] = Field(None, description="log to this W&B project when wandb is installed")
    tensorboard_log_dir: Optional[str] = Field(None, description="write TensorBoard scalars here")


class Data(Section):
    format: Literal["auto", "alpaca", "sharegpt", "chat", "prompt_completion", "input_output", "text"] = Field(
        "auto", description="record format: alpaca, sharegpt (conversations), chat (messages), prompt_completion, "
        "input_output (axolotl's template-free segments), text"
    )
    eval_split: float = Field(0.1, ge=0, lt=1.0, description="fraction held out for evaluation")
    eval_path: Optional[str] = Field(None, description="a separate evaluation file (overrides eval_split)")
    train_on_prompt: bool = Field(False, description="also compute loss on prompt tokens")
    text_field: str = Field("text", description="field holding raw text for the text format")
    replace: dict[str, str] = Field(
        default_factory=dict,
        description="text to substitute in every record before training, e.g. {\"{{name}}\": \"Aria\"} for "
        "LLaMA-Factory's identity.json placeholders",
        json_schema_extra={"propertyNames": {"minLength": 1}},
    )

    @field_validator("replace")
    @classmethod
    def _replace_keys(cls, value: dict[str, str]) -> dict[str, str]:
        empty = [k for k in value if not k]
        if empty:
            raise ValueError('an empty key would replace nothing: name each placeholder, e.g. {"{{name}}": "Aria"}')
        return value


def _size(value: Optional[str]) -> Optional[str]:
    if value is not None:
        from methods.memory_plan import parse_size

        parse_size(value)  # ValueError: "'x' is not a size: write e.g. 24GiB, 80GB or 512MiB"
    return value


def _duration(value: Optional[str]) -> Optional[str]:
    if value is not None:
        parse_duration(value)
    return value


def parse_duration(text: str) -> float:
    """'24h', '90m', '45s', '200ms', '1.5h' or plain seconds -> seconds."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a duration: write e.g. 24h, 90m, 45s or 200ms")
    scale = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[(match.group(2) or "s").lower()]
    return float(match.group(1)) * scale


class TrainingEfficiency(Section):
    max_training_time: Optional[str] = Field(None, description="the run's training time at most, e.g. 24h or 90m")
    memory_budget: Optional[str] = Field(None, description="the run's measured peak memory at most, e.g. 24GB")
    convergence_threshold: Optional[float] = Field(
        None, ge=0, description="converged when the loss changed by at most this fraction over the last fifth"
    )
    _check_time = field_validator("max_training_time")(_duration)
    _check_memory = field_validator("memory_budget")(_size)


class QualityMetrics(Section):
    perplexity_threshold: Optional[float] = Field(None, gt=0, description="the best eval perplexity at most")
    downstream_tasks: list[str] = Field(
        default_factory=list, description="multiple-choice tasks (files, or lm-eval names) `lf-tui eval` measures"
    )
    minimum_accuracy: Optional[float] = Field(None, ge=0, le=1, description="each downstream task's acc at least")


class ResourceMetrics(Section):
    max_gpu_memory: Optional[str] = Field(None, description="the GPU's measured peak at most, e.g. 24GB")
    min_gpu_utilization: Optional[float] = Field(
        None, ge=0, le=1, description="the mean GPU utilisation while training at least (0-1)"
    )
    max_inference_latency: Optional[str] = Field(None, description="the first-token latency at most, e.g. 200ms")
    _check_memory = field_validator("max_gpu_memory")(_size)
    _check_latency = field_validator("max_inference_latency")(_duration)


class Benchmarks(Section):
    """Thresholds each run is checked against (`lf-tui report RUN`); every one optional."""

    training_efficiency: TrainingEfficiency = Field(default_factory=TrainingEfficiency)
    quality_metrics: QualityMetrics = Field(default_factory=QualityMetrics)
    resource_metrics: ResourceMetrics = Field(default_factory=ResourceMetrics)


class MethodSpecific(Section):
    """Base of every method's `method_specific` model."""


class MethodConfigBase(Section):
    method_name: str = Field(..., description="the fine-tuning method")
    base_model: str = Field(
        "builtin:tiny-llama", min_length=1, description="hub id, local folder or builtin:tiny-llama"
    )
    version: str = Field(CONFIG_VERSION, description="config format version")
    trust_remote_code: bool = Field(False, description="run model code shipped with the checkpoint")
    training: Training = Field(default_factory=Training)
    hardware: Hardware = Field(default_factory=Hardware)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    data: Data = Field(default_factory=Data)
    benchmarks: Benchmarks = Field(default_factory=Benchmarks)
    method_specific: dict[str, Any] = Field(default_factory=dict)


def config_model_for(method_name: str, spec_model: type[MethodSpecific]) -> type[MethodConfigBase]:
    """Build the full config model of a method: the base with a typed `method_specific`."""
    from pydantic import create_model

    name_type: Any = Literal.__getitem__(method_name)  # Literal["<name>"] of a name known only at run time
    return create_model(
        f"{spec_model.__name__}Config",
        __base__=MethodConfigBase,
        method_name=(name_type, Field(method_name, description="the fine-tuning method")),
        method_specific=(spec_model, Field(default_factory=spec_model)),
    )
