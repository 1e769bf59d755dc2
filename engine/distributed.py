"""A multi-process run's files and commands (light: no torch): accelerate's config, the launch line, rank files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lf_common.files import write_json
from methods.distributed_rules import World, visible_gpus, world_of

ACCELERATE_CONFIG = "accelerate_config.json"  # kept with the run (accelerate reads JSON as well as YAML)
RANKS_DIR = "ranks"  # rank-N.log (its stdout and stderr), rank-N.json (pid while it runs, then how it ended)
LAUNCH_LOG = "engine.log"  # the supervisor's and accelerate's own output (run_store.LOG)
DECODER_LAYERS = {"llama": "LlamaDecoderLayer", "qwen2": "Qwen2DecoderLayer", "mistral": "MistralDecoderLayer",
                  "gpt2": "GPT2Block", "gpt_neox": "GPTNeoXLayer", "phi3": "Phi3DecoderLayer",
                  "gemma": "GemmaDecoderLayer", "gemma2": "Gemma2DecoderLayer", "phi": "PhiDecoderLayer"}


def run_world(run_path: Path) -> World | None:
    """The world of the run folder's config, or None when it trains in one process (or cannot be read)."""
    from methods.validation import validate_config  # noqa: F401  (imported only when the config asks for more)

    try:
        document = json.loads((run_path / "config.json").read_text(encoding="utf-8"))
        d = document["hardware"]["distributed"]
        if d.get("num_processes", 1) == 1 and d.get("num_machines", 1) == 1:
            return None  # the common case, without validating the config again
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    resolved = validate_config({"method_config": document})
    if resolved.config is None:
        return None
    world = world_of(resolved.config)
    return world if world.distributed or world.num_machines > 1 else None


def rank_log(run_path: Path, rank: int) -> Path:
    return run_path / RANKS_DIR / f"rank-{rank}.log"


def rank_record(run_path: Path, rank: int) -> Path:
    return run_path / RANKS_DIR / f"rank-{rank}.json"


def write_rank_record(run_path: Path, rank: int, data: dict[str, Any]) -> None:
    write_json(rank_record(run_path, rank), {"rank": rank, **data})


def read_rank_records(run_path: Path) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((run_path / RANKS_DIR).glob("rank-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out[int(data["rank"])] = data
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _decoder_layer(cfg: Any) -> str | None:
    """The decoder layer class FSDP wraps as a unit, from the model's config.json model_type."""
    try:
        from engine.planning import model_config

        model_type = str(model_config(cfg.base_model)[0].get("model_type", ""))
    except Exception:
        return None
    return DECODER_LAYERS.get(model_type)


def accelerate_config(cfg: Any, world: World, cuda: bool) -> dict[str, Any]:
    """The `accelerate launch --config_file` settings of a run (CPU processes: torchrun with gloo)."""
    d = cfg.hardware.distributed
    port = d.main_process_port or (29500 if world.num_machines > 1 else 0)  # 0: accelerate picks a free port
    out: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "MULTI_GPU", "num_processes": world.size,
        "num_machines": world.num_machines, "machine_rank": d.machine_rank, "main_process_port": port,
        "main_process_ip": d.main_process_ip or "127.0.0.1", "rdzv_backend": "static", "same_network": True,
        "mixed_precision": "no", "use_cpu": not cuda, "gpu_ids": "all", "debug": False,
    }  # mixed precision: the engine's own autocast, as in a single-process run
    if cuda and world.strategy == "fsdp":
        layer = _decoder_layer(cfg) if d.fsdp.auto_wrap_decoder_layer else None
        out["distributed_type"] = "FSDP"
        out["fsdp_config"] = {
            "fsdp_version": 1, "fsdp_sharding_strategy": d.fsdp.sharding_strategy.upper(),
            "fsdp_offload_params": d.fsdp.cpu_offload, "fsdp_use_orig_params": True,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP" if layer else "NO_WRAP",
            **({"fsdp_transformer_layer_cls_to_wrap": layer} if layer else {}),
            "fsdp_state_dict_type": "SHARDED_STATE_DICT", "fsdp_sync_module_states": True,
            "fsdp_cpu_ram_efficient_loading": False,
        }
    if cuda and world.strategy == "deepspeed":
        out["distributed_type"] = "DEEPSPEED"
        out["deepspeed_config"] = {"zero_stage": d.zero_stage, "gradient_accumulation_steps": 1,
                                   "gradient_clipping": cfg.training.max_grad_norm or 1.0,
                                   "zero3_init_flag": False, "offload_optimizer_device": "none",
                                   "offload_param_device": "none"}
    return out


def cuda_run(cfg: Any) -> bool:
    device = cfg.hardware.device
    return device.startswith("cuda") or (device == "auto" and visible_gpus() > 0)


def launch_command(run_path: Path, cfg: Any, world: World, engine_args: list[str]) -> list[str]:
    """Write the run's accelerate config and return the line that starts every rank of this machine."""
    config_path = run_path / ACCELERATE_CONFIG
    write_json(config_path, accelerate_config(cfg, world, cuda_run(cfg)))
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path), "--quiet",
            "--max_restarts", "0", "--monitor_interval", "0.5", "-m", "engine", *engine_args]


PEER_LOST = ("connection closed by peer", "connection reset by peer", "broken pipe", "nccl", "gloo",
             "socket timeout", "connection refused")


def peer_failure(exc: BaseException) -> bool:
    """Whether a rank's error is the loss of another rank (a failed collective), not a fault of its own."""
    if type(exc).__name__ in ("DistBackendError", "DistNetworkError", "DistStoreError"):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(marker in text for marker in PEER_LOST)
