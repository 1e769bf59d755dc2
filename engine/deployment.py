"""Deployment figures of a trained run: adapter and merged size, first-token latency and tokens/s on this machine.

`summary.json`'s "deployment" object: adapter_bytes (the trained weights folder on disk), merged_bytes (the full model
in the dtype `lf-tui export --merged` writes by default: the base's parameters x bytes a value; a full fine-tune's
folder as saved; None for a method that cannot merge, with merged_note saying why), first_token_s and tokens_per_s
(the medians of `samples` short greedy generations after a warm-up, each timed as the serving process times its
answers, engine.generation_timing.complete: one timing alone swings tenfold on a busy machine), new_tokens, device.
A figure that could not be measured is None and `not_measured` says why: measuring never fails a run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROMPT = "Say the greeting."
NEW_TOKENS = 8  # a few tokens: cheap on tiny models, enough for a tokens/s past the first one
SAMPLES = 3  # timed generations after the warm-up; the figures are their medians
BYTES_PER_VALUE = {"fp32": 4, "bf16": 2, "fp16": 2}


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (what copying it takes on disk)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def base_parameters(cfg: Any) -> int:
    """The base model's parameter count from its config (built on the meta device: no weights read; tied weights
    counted once, as save_pretrained writes them)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from engine.models import model_source

    config = AutoConfig.from_pretrained(model_source(cfg.base_model), trust_remote_code=cfg.trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code)
    return sum(p.numel() for p in model.parameters())


def sizes(cfg: Any, weights: Path) -> dict[str, Any]:
    """adapter_bytes and merged_bytes (with merged_dtype, merged_params, or merged_note) of the weights in `weights`."""
    from engine.export import resolve_dtype, weights_kind
    from methods.catalogue import get_catalogue
    from methods.contract import MethodImplementation

    figures: dict[str, Any] = {"adapter_bytes": folder_bytes(weights)}
    if weights_kind(weights) == "model":  # a full fine-tune: the folder is the whole model already
        return {**figures, "merged_bytes": figures["adapter_bytes"], "merged_dtype": "as trained"}
    impl = get_catalogue().get(cfg.method_name).implementation()
    if type(impl).merge is MethodImplementation.merge:
        return {**figures, "merged_bytes": None, "merged_note": f"cannot merge: {impl.merge_refusal}"}
    dtype = resolve_dtype("auto", cfg)
    params = base_parameters(cfg)
    return {**figures, "merged_bytes": params * BYTES_PER_VALUE[dtype], "merged_dtype": dtype, "merged_params": params}


def device_name(runtime: Any) -> str:
    """`cuda:0 (NVIDIA H200)`, `cpu (16 threads)`: where the timings were taken."""
    import torch

    device = runtime.device
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


@contextlib.contextmanager
def cache_on(model: Any) -> Iterator[None]:
    """The KV cache on while timing (the engine loads models with it off for training), as a deployed model runs."""
    configs = [c for c in (getattr(model, "config", None), getattr(model, "generation_config", None)) if c is not None]
    before = [getattr(c, "use_cache", None) for c in configs]
    for config in configs:
        config.use_cache = True
    try:
        yield
    finally:
        for config, value in zip(configs, before):
            config.use_cache = value


def timings(model: Any, impl: Any, tokenizer: Any, runtime: Any, data_format: str) -> dict[str, Any]:
    """first_token_s, tokens_per_s and new_tokens: the medians of SAMPLES short greedy answers, after a one-token
    warm-up."""
    from statistics import median, median_low

    from engine.generate import format_prompt
    from engine.generation_timing import complete

    text = format_prompt(tokenizer, PROMPT, data_format)
    was_training = getattr(model, "training", False)
    try:
        with cache_on(model):
            complete(model, impl, tokenizer, runtime, text, max_new_tokens=1)  # kernels, allocator: not the figure
            answers = [complete(model, impl, tokenizer, runtime, text, max_new_tokens=NEW_TOKENS)
                       for _ in range(SAMPLES)]
    finally:
        if was_training:
            model.train()
    return {"first_token_s": round(median(a["first_token_s"] for a in answers), 6),
            "tokens_per_s": round(median(a["tokens_per_s"] for a in answers), 2),
            "new_tokens": median_low(a["new_tokens"] for a in answers), "samples": len(answers),
            "device": device_name(runtime)}


def _why(exc: BaseException) -> str:
    oom = "out of memory" in str(exc).lower() or type(exc).__name__ in ("OutOfMemoryError", "MemoryError")
    return ("out of memory" if oom else type(exc).__name__) + f": {str(exc).splitlines()[0][:300] if str(exc) else ''}"


def measure(model: Any, impl: Any, tokenizer: Any, runtime: Any, cfg: Any, weights: Path,
            data_format: str) -> dict[str, Any]:
    """Every figure that can be had: sizes and timings are measured apart, and a failure of either is recorded in
    `not_measured` (never raised)."""
    figures: dict[str, Any] = {"adapter_bytes": None, "merged_bytes": None, "first_token_s": None,
                               "tokens_per_s": None, "device": None}
    problems = []
    try:
        figures.update(sizes(cfg, weights))
    except Exception as exc:
        problems.append(f"sizes: {_why(exc)}")
        with contextlib.suppress(OSError):
            figures["adapter_bytes"] = folder_bytes(weights)
    try:
        figures.update(timings(model, impl, tokenizer, runtime, data_format))
    except Exception as exc:  # out of memory included: the run has trained and saved; only the figure is missing
        problems.append(f"timings: {_why(exc)}")
        _free(runtime)
    if problems:
        figures["not_measured"] = "; ".join(problems)
    return figures


def _free(runtime: Any) -> None:
    import torch

    if getattr(runtime, "device", None) is not None and runtime.device.type == "cuda":
        torch.cuda.empty_cache()


def after_training(trainer: Any, weights: Path, log: Any) -> dict[str, Any]:
    """The figures of a run that has just trained, timed on its model as it is in memory (its device, its dtype)."""
    import time

    started = time.perf_counter()
    try:
        from engine.models import load_tokenizer

        tokenizer = load_tokenizer(trainer.cfg)
        figures = measure(trainer.model, trainer.impl, tokenizer, trainer.runtime, trainer.cfg, weights,
                          trainer.data_format)
    except Exception as exc:
        figures = {"adapter_bytes": None, "merged_bytes": None, "first_token_s": None, "tokens_per_s": None,
                   "device": None, "not_measured": _why(exc)}
    figures["measure_s"] = round(time.perf_counter() - started, 3)  # within the run's training time, as saving is
    log("warning" if figures.get("not_measured") else "info", "deployment figures: " + describe(figures))
    return figures


def of_run(run: Any) -> dict[str, Any]:
    """The figures of a run folder's trained weights, loaded as the serving process loads them (a fused run)."""
    from engine.generate import load_trained_model, trained_weights
    from engine.runner import load_run_config

    try:
        cfg = load_run_config(run)
        model, tokenizer, impl, runtime = load_trained_model(run)
        data_format = (run.summary() or {}).get("data_format", "alpaca")
        return measure(model, impl, tokenizer, runtime, cfg, trained_weights(run), data_format)
    except Exception as exc:
        return {"adapter_bytes": folder_bytes(run.weights_dir) if run.weights_dir.is_dir() else None,
                "merged_bytes": None, "first_token_s": None, "tokens_per_s": None, "device": None,
                "not_measured": _why(exc)}


def describe(figures: dict[str, Any]) -> str:
    """One line for the engine's log."""
    parts = [f"{k}={figures[k]}" for k in ("adapter_bytes", "merged_bytes", "first_token_s", "tokens_per_s", "device")
             if figures.get(k) is not None]
    if figures.get("not_measured"):
        parts.append(f"not measured: {figures['not_measured']}")
    return ", ".join(parts) or "none"
