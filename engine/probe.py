"""Measure a config's peak training memory: load the model as a run would, train a few optimizer steps at the
longest sequence length and the configured batch, report the peak (and, on a GPU, the largest batch that fits).

On CUDA the peak is the allocator's (torch.cuda.max_memory_allocated, after the model loads from zero: no CUDA
context, no allocator slack); on CPU it is the process's peak resident memory above its resident memory after one
warm-up step on the built-in model (what the process grows by once, kernels loaded lazily and thread pools, is the
runtime: the planner leaves it out on a CPU, so the two compare like with like).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH_CAP = 1024  # --find-batch stops doubling here


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak_rss_bytes() -> int:
    """The peak resident memory since the last _reset_peak_rss (Linux's VmHWM), else since the process started."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def _reset_peak_rss() -> None:
    """Linux: the peak resident memory starts again from now (clear_refs 5); elsewhere the process's peak stays."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        pass


CPU_MEASURES = "the peak resident memory above the process's after a warm-up step (the runtime left out)"
CUDA_MEASURES = "the CUDA allocator's peak (no CUDA context, no allocator slack)"


def warm_up_cpu_runtime(cfg: Any) -> None:
    """One tiny step on the built-in model in `cfg`'s precision: what the process grows by once (kernels loaded
    lazily, thread pools, the allocator's first arenas) is resident before the measurement starts."""
    import gc

    from methods.validation import validate_config

    warm = validate_config({"method": "lora", "hardware": {"device": "cpu",
                                                            "mixed_precision": cfg.hardware.mixed_precision},
                            "training": {"batch_size": 1, "max_seq_length": 16}}).config
    if warm is not None:
        _train_steps(warm, 1, 16, 1)
        gc.collect()


def synthetic_examples(n: int, seq_len: int, vocab: int, seed: int) -> list[Any]:
    """n examples of exactly seq_len random tokens, every position a target (the longest case)."""
    import torch

    from engine.data import Example

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, max(4, vocab), (n, seq_len), generator=generator).tolist()
    return [Example(input_ids=row, labels=list(row)) for row in ids]


def _train_steps(cfg: Any, batch: int, seq_len: int, steps: int) -> dict[str, Any]:
    """Build the model and train `steps` optimizer steps of `batch` x `seq_len` tokens; the peak and its time."""
    import torch

    from engine.control import Control
    from engine.models import load_tokenizer, resolve_runtime
    from engine.runner import build_model
    from engine.trainer import Trainer

    training = cfg.training.model_copy(update={"batch_size": batch, "max_steps": steps, "epochs": 1})
    monitoring = cfg.monitoring.model_copy(update={"eval_steps": 0, "save_steps": 0, "loss_spike_factor": 0})
    cfg = cfg.model_copy(update={"training": training, "monitoring": monitoring})
    runtime = resolve_runtime(cfg)
    cuda = runtime.device.type == "cuda"
    tokenizer = load_tokenizer(cfg)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(runtime.device)
        start = torch.cuda.memory_allocated(runtime.device)
    else:
        start = _rss_bytes()
        _reset_peak_rss()
    model, impl = build_model(cfg, runtime, lambda level, message: None, steps)
    examples = synthetic_examples(batch * training.gradient_accumulation_steps * steps, seq_len, len(tokenizer),
                                  cfg.training.seed)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, impl, cfg, runtime, examples, [], tokenizer.pad_token_id or 0, "padded",
                          lambda event: None, Control(), Path(tmp), lambda figures, step: None)
        began = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - began
    if cuda:
        torch.cuda.synchronize(runtime.device)
        peak = torch.cuda.max_memory_allocated(runtime.device) - start
        reserved = torch.cuda.max_memory_reserved(runtime.device)
    else:
        peak, reserved = _peak_rss_bytes() - start, 0
    del trainer, model
    return {"peak_bytes": int(peak), "reserved_bytes": int(reserved), "device": str(runtime.device),
            "precision": runtime.precision, "batch_size": batch, "seq_len": seq_len, "steps": steps,
            "seconds_per_step": round(seconds / max(1, steps), 3), "measures": CUDA_MEASURES if cuda else CPU_MEASURES}


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def find_batch(cfg: Any, seq_len: int, steps: int) -> dict[str, Any]:
    """The largest batch whose steps fit the GPU: doubling until out of memory, then bisecting (never a crash)."""
    import gc

    import torch

    def fits(batch: int) -> dict[str, Any] | None:
        try:
            return _train_steps(cfg, batch, seq_len, steps)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            return None
        finally:
            gc.collect()
            torch.cuda.empty_cache()

    good, bad, best = 0, None, None
    batch = 1
    while batch <= BATCH_CAP:
        result = fits(batch)
        if result is None:
            bad = batch
            break
        good, best = batch, result
        batch *= 2
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        result = fits(middle)
        if result is None:
            bad = middle
        else:
            good, best = middle, result
    return {"max_batch_size": good, "at_max_batch": best, "capped": bad is None}


def probe(config_path: Path, dataset: str | None = None, steps: int = 3, search_batch: bool = False) -> dict[str, Any]:
    """The measured peak of the config in `config_path` (a run folder's or a user's file), as one JSON object."""
    from engine.errors import EngineError
    from methods.config_file import ConfigInputError, read_config_file
    from methods.validation import validate_config

    try:
        text, document = read_config_file(str(config_path))
    except ConfigInputError as exc:
        raise EngineError("config", str(exc)) from None
    resolved = validate_config(document, text=text, source=str(config_path))
    if resolved.config is None:
        raise EngineError("config", "; ".join(e.render() for e in resolved.report.errors),
                          f"lf-tui validate-config -c {config_path} shows every problem")
    from methods.config_paths import resolve_config_paths

    cfg = resolve_config_paths(resolved.config, Path(config_path).parent)  # relative paths: against the file's folder
    seq_len = cfg.training.max_seq_length
    if dataset:
        seq_len = _longest(cfg, dataset, seq_len)
    from engine.models import resolve_runtime

    device = resolve_runtime(cfg).device.type
    if search_batch and device != "cuda":  # before anything loads
        raise EngineError("unsupported_hardware", "--find-batch needs a CUDA GPU (out of memory on a CPU is "
                          "the operating system's to handle, not an error a process can catch)")
    if device == "cpu":
        warm_up_cpu_runtime(cfg)
    try:
        result = _train_steps(cfg, cfg.training.batch_size, seq_len, steps)
    except Exception as exc:
        if not (search_batch and _is_oom(exc)):
            raise
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()  # the configured batch does not fit: the search says what does
        result = {"peak_bytes": None, "device": "cuda", "batch_size": cfg.training.batch_size, "seq_len": seq_len,
                  "steps": steps, "out_of_memory": True, "precision": cfg.hardware.mixed_precision,
                  "seconds_per_step": None, "measures": CUDA_MEASURES}
    if search_batch:
        result["find_batch"] = find_batch(cfg, seq_len, steps)
    return result


def _longest(cfg: Any, dataset: str, cap: int) -> int:
    """The longest tokenised example of `dataset` (capped at max_seq_length)."""
    from engine.data import prepare
    from engine.models import load_tokenizer

    data = prepare(load_tokenizer(cfg), dataset, cfg.data, cap, cfg.training.seed)
    return min(cap, max((len(e.input_ids) for e in [*data.train, *data.eval]), default=cap))
