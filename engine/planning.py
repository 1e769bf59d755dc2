"""Plan a config's training memory before anything loads: find the model's config.json, size it, ask the method
(light: no torch; the UI and `lf-tui plan` call it)."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from engine.builtin_spec import builtin_config, is_builtin
from methods.catalogue import get_catalogue
from methods.memory_plan import Device, MemoryPlan, Setting, plan_memory, setting_for
from methods.model_shape import ModelShape, shape_from_config


class PlanError(Exception):
    """The plan cannot be made (no config.json reachable, a method without a memory model); `hint` says what to do."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


def model_config(base_model: str) -> tuple[dict[str, Any], str]:
    """(config.json, where it came from) for a built-in model, a local folder, a hub id whose shape the project
    ships (methods/reference_models), the Hugging Face cache or the hub."""
    if is_builtin(base_model):
        found = builtin_config(base_model)
        if found is None:
            raise PlanError(f"unknown built-in model {base_model!r}", "builtin:tiny-llama is the built-in model")
        return found, "built in"
    from methods.config_paths import looks_local

    folder = Path(base_model).expanduser()
    if folder.exists():
        path = folder / "config.json" if folder.is_dir() else folder
        try:
            return _json_object(path.read_text(encoding="utf-8"), str(path)), str(path)
        except (OSError, ValueError) as exc:
            raise PlanError(f"{path}: cannot read the model's config ({exc})",
                            "a model folder holds config.json (save_pretrained writes it)") from None
    if looks_local(base_model, Path.cwd()) or base_model.count("/") > 1:
        raise PlanError(f"{base_model}: no such folder", "give a model folder that exists, or a hub id (org/name)")
    from methods.model_shape import reference_config

    return reference_config(base_model) or hub_config(base_model)


def _json_object(text: str, where: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{where} holds a JSON {type(data).__name__}, not an object")
    return data


HUB_ANSWERS: dict[str, tuple[float, tuple[dict[str, Any], str] | PlanError]] = {}
HUB_RETRY_S = 60.0  # a failed hub lookup is not retried for this long (the editor asks on every edit)


def hub_config(repo_id: str) -> tuple[dict[str, Any], str]:
    """config.json of a hub model: from the cache, else fetched; answers (and failures, for a minute) remembered.

    PlanError (the reason and what to do) when it is neither cached nor reachable: `create_run` refuses such a
    model before launch with it."""
    import time

    known = HUB_ANSWERS.get(repo_id)
    if known is not None and (not isinstance(known[1], PlanError) or time.monotonic() - known[0] < HUB_RETRY_S):
        if isinstance(known[1], PlanError):
            raise known[1]
        return known[1]
    try:
        answer: tuple[dict[str, Any], str] | PlanError = _fetch_hub_config(repo_id)
    except PlanError as exc:
        answer = exc
    HUB_ANSWERS[repo_id] = (time.monotonic(), answer)
    if isinstance(answer, PlanError):
        raise answer
    return answer


# huggingface_hub.constants.ENV_VARS_TRUE_VALUES (not imported: this module stays light), compared upper-cased
ENV_TRUE = frozenset({"1", "ON", "YES", "TRUE"})


def hub_offline(datasets: bool = False) -> bool:
    """Whether the Hugging Face libraries stay offline, by their own rule: huggingface_hub's HF_HUB_OFFLINE (else
    TRANSFORMERS_OFFLINE) is 1, on, yes or true in any case; with `datasets`, HF_DATASETS_OFFLINE when set decides
    instead (as the datasets library reads it)."""
    if datasets and os.environ.get("HF_DATASETS_OFFLINE") is not None:
        return os.environ["HF_DATASETS_OFFLINE"].upper() in ENV_TRUE
    return (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper() in ENV_TRUE


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """A quick TCP connection to the hub (huggingface_hub itself retries for half a minute when offline)."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _fetch_hub_config(repo_id: str) -> tuple[dict[str, Any], str]:
    offline_hint = "give a local model folder, or a hub id already in the Hugging Face cache (only config.json is read)"
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
        if isinstance(cached, str):
            return _json_object(Path(cached).read_text(encoding="utf-8"), cached), f"{cached} (Hugging Face cache)"
        if hub_offline():
            raise PlanError(f"{repo_id!r}: config.json is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                            offline_hint)
        if not hub_reachable():
            raise PlanError(f"{repo_id!r}: config.json is not in the Hugging Face cache and the hub is unreachable",
                            offline_hint)
        path = hf_hub_download(repo_id, "config.json", etag_timeout=5)
        return _json_object(Path(path).read_text(encoding="utf-8"), path), f"{path} (downloaded)"
    except PlanError:
        raise
    except Exception as exc:  # not a repo id, unknown repo, gated, a bad file: huggingface_hub has many error types
        raise PlanError(f"{repo_id!r}: cannot read its config.json ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})",
                        f"{offline_hint}; gated models need HF_TOKEN") from None


def model_shape(base_model: str) -> tuple[ModelShape, str]:
    config, source = model_config(base_model)
    needed = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    try:
        shape = shape_from_config(config)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError):
        text_config = config.get("text_config")
        inner: dict[str, Any] = text_config if isinstance(text_config, dict) else config
        aliases = {"hidden_size": ("n_embd", "d_model"), "num_hidden_layers": ("n_layer",),
                   "num_attention_heads": ("n_head",)}
        missing = [k for k in needed if not any(isinstance(inner.get(n), int) and inner.get(n)
                                                for n in (k, *aliases.get(k, ())))]
        raise PlanError(f"{source}: not a causal language model config the planner can size"
                        + (f" (missing or zero: {', '.join(missing)})" if missing else ""),
                        f"the planner reads {', '.join(needed)}") from None
    if min(shape.hidden_size, shape.num_layers, shape.num_heads, shape.vocab_size) <= 0:
        raise PlanError(f"{source}: sizes must be positive", f"the planner reads {', '.join(needed)}")
    return shape, source


def gpu_budget() -> tuple[int | None, str]:
    """The first GPU's total memory from NVML, and its name; (None, "") without NVML or a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            name = pynvml.nvmlDeviceGetName(handle)
            total = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no library, no driver, no GPU: all mean "no budget known"
        return None, ""
    return total, f"GPU 0: {name.decode() if isinstance(name, bytes) else name}"


BUDGET_ENV = "LF_TUI_GPU_MEMORY"  # plan for a GPU of this size (e.g. 24GiB) instead of what this machine has


def machine_budget() -> tuple[Device, int, str]:
    """The one place that decides what a plan assumes before a run (lf-tui plan and recommend, the editor, the
    What fits screen): a GPU of $LF_TUI_GPU_MEMORY when set (an explicit choice, and the same answer on every
    machine), else this machine's first GPU (NVML), else its CPU and RAM. (device, budget bytes, where)."""
    from methods.memory_plan import parse_size

    if os.environ.get(BUDGET_ENV):
        try:
            return "cuda", parse_size(os.environ[BUDGET_ENV]), f"${BUDGET_ENV}"
        except ValueError as exc:
            raise PlanError(f"${BUDGET_ENV}: {exc}", "unset it, or give a size such as 24GiB") from None
    total, where = gpu_budget()
    if total is not None:
        return "cuda", total, where
    return ("cpu", *ram_budget())


class Target(NamedTuple):
    """What a config's plan assumes: the device, its memory budget (None: unknown), where the budget came from and
    why this device."""

    device: Device
    budget: int | None
    where: str
    why: str


def plan_target(config_device: str = "auto", device: Device | None = None, budget: int | None = None,
                where: str = "") -> Target:
    """The device and budget a config's plan assumes: `device` (--device) first, else a GPU when `budget`
    (--gpu-memory) is given (whatever hardware.device says: a GPU's memory is no CPU's RAM nor Apple's unified
    memory), else the config's explicit hardware.device (a config written for a GPU box plans for a GPU on a laptop
    too), else this machine (machine_budget). A GPU's budget: `budget`, $LF_TUI_GPU_MEMORY, this machine's GPU,
    else None (unknown: the plan says so)."""
    if budget is not None and device is None:
        return Target("cuda", budget, where, where)
    explicit = config_device if config_device and config_device != "auto" else None
    if explicit == "mps" and device is None:
        raise PlanError("hardware.device is 'mps': the planner sizes CUDA GPUs and CPUs, not Apple's unified memory",
                        "give --device cuda or --device cpu to plan as one of them")
    why = "--device" if device else "hardware.device in the config" if explicit else ""
    chosen: Device | None = device or (("cpu" if explicit == "cpu" else "cuda") if explicit else None)
    if budget is not None:  # with --device
        return Target(chosen or "cuda", budget, where, why or where)
    if chosen is None:
        return Target(*machine_budget(), "this machine")
    if chosen == "cpu":
        return Target("cpu", *ram_budget(), why)
    assumed, size, source = machine_budget()  # $LF_TUI_GPU_MEMORY or this machine's GPU
    if assumed == "cuda":
        return Target("cuda", size, source, why)
    return Target("cuda", None, "", why)


def ram_budget() -> tuple[int, str]:
    """This machine's RAM, the budget of a run on its CPU."""
    import psutil

    return int(psutil.virtual_memory().total), "this machine's CPU"


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX, as the engine checks, from /proc/cpuinfo (no torch)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


PRECISIONS: dict[str, Literal["bf16", "fp16", "fp32"]] = {"bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def estimate(cfg: Any, device: Device = "cuda", base_model: str | None = None, seq_len: int | None = None,
             known: tuple[ModelShape, str] | None = None,
             precision: str | None = None) -> tuple[MemoryPlan, ModelShape, str]:
    """The memory plan of a validated config (its base model, or `base_model`) on `device`, the shape, its source;
    `known`: that model's (shape, source) when the caller has read it already (one read for many methods);
    `precision`: the one a run really used (bf16, fp16, fp32) instead of the one this machine would resolve."""
    shape, source = known or model_shape(base_model or cfg.base_model)
    method = get_catalogue().get(cfg.method_name)
    if method.info.memory is None:
        raise PlanError(f"method {cfg.method_name!r} declares no memory model",
                        "its spec.py can set memory= (see methods/lora/spec.py)")
    footprint = method.info.memory(shape, cfg)
    setting = setting_on(cfg, device, seq_len)
    used = PRECISIONS.get(precision or "")
    if used is not None and used != setting.precision:
        from dataclasses import replace

        setting = replace(setting, precision=used)
    return plan_memory(shape, footprint, setting), shape, source


def setting_on(cfg: Any, device: Device, seq_len: int | None = None) -> Setting:
    """The config's memory-relevant settings on `device`, precision resolved as the engine will on this machine
    (a CPU's bf16 autocast only where it has native bf16): every plan (estimate, recommend) goes through it."""
    return setting_for(cfg, device, cpu_bf16=device == "cpu" and cpu_has_native_bf16(), seq_len=seq_len)
