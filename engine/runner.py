"""One training run, top to bottom: setup -> build -> data -> fit -> validate -> save, with every end reported."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from engine.control import Control
from engine.control_requests import ControlInbox
from engine.distributed import peer_failure, write_rank_record
from engine.emitter import Emitter, RankEmitter, note_ending_in_place
from engine.errors import Cancelled, Diverged, EngineError, disk_error, kept_note
from engine.protocol import Error, Finished, Log, RunStarted, finite_json
from engine.run_store import ENGINE, SUMMARY, RunDir, exit_code
from lf_common.files import write_json
from methods.catalogue import get_catalogue
from methods.contract import MethodContext as ContractContext
from methods.contract import MethodImplementation
from methods.validation import validate_config


class EngineContext(ContractContext):
    """The engine's side of the method contract: logging, errors and model loading for one run."""

    def __init__(self, cfg: Any, runtime: Any, log: Any, total_steps: int = 0):
        from engine import models

        self.cfg, self.runtime, self._log, self._models = cfg, runtime, log, models
        self.total_steps = total_steps

    def log(self, message: str, level: str = "info") -> None:
        self._log(level, message)

    def fail(self, kind: str, message: str, hint: str = "") -> EngineError:
        return EngineError(kind, message, hint)

    def load_base_model(self, **kwargs: Any) -> Any:
        return self._models.load_base_model(self.cfg, self.runtime, **kwargs)

    def check_target_modules(self, model: Any, target: Any) -> None:
        self._models.check_target_modules(model, target)


def load_run_config(run: RunDir, warn: Callable[[str], None] | None = None) -> Any:
    """The run's resolved config. Its unknown keys were refused when the run was made (train, quick-train, the
    queue, Ctrl+R); read back here (a run folder made otherwise, or by an older version) they are ignored, and
    `warn` is told each one."""
    document = run.config()
    if document is None:
        raise EngineError("config", f"{run.file('config.json')}: missing or not JSON")
    resolved = validate_config({"method_config": document}, lenient=True)
    if not resolved.report.ok:
        raise EngineError("config", "; ".join(e.render() for e in resolved.report.errors))
    for issue in resolved.report.warnings:
        if warn is not None and "unknown" in issue.message:
            warn(f"{run.file('config.json')}: {issue.render()}")
    return resolved.config


MethodContext = EngineContext  # the old name (tests build a context with it); the contract's is methods.contract


def config_hash(cfg: Any) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]


def build(cfg: Any, runtime: Any, log: Any, total_steps: int = 0) -> tuple[Any, Any, MethodImplementation]:
    """Tokenizer, adapted model and the method's implementation."""
    from engine.models import load_tokenizer

    tokenizer = load_tokenizer(cfg)
    model, impl = build_model(cfg, runtime, log, total_steps)
    return tokenizer, model, impl


def build_model(cfg: Any, runtime: Any, log: Any, total_steps: int = 0) -> tuple[Any, MethodImplementation]:
    """The base model adapted by the method (on the run's device), and the method's implementation."""
    import torch

    torch.manual_seed(cfg.training.seed)
    impl = get_catalogue().get(cfg.method_name).implementation()
    ctx = EngineContext(cfg, runtime, log, total_steps)
    model: Any = impl.load_model(cfg, ctx)
    if cfg.hardware.gradient_checkpointing and not impl.handles_gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):  # a transformers model feature, not a method hook
            model.enable_input_require_grads()
    model = impl.apply(model, cfg, ctx)
    place(model, impl, runtime)
    return model, impl


def place(model: Any, impl: MethodImplementation, runtime: Any) -> None:
    """Move the model to the run's device, unless the method's load_model placed it already (device_map)."""
    if not impl.places_model:
        model.to(runtime.device)


def load_model(impl: MethodImplementation, cfg: Any, runtime: Any, ctx: ContractContext) -> Any:
    """The base model as the method wants it loaded (QLoRA quantises; the contract's default loads it plainly)."""
    return impl.load_model(cfg, ctx)


def run(run_dir: Path, events_fd: int | None = None, resume: bool = False, launched_at: float | None = None,
        rank: int | None = None) -> int:
    """Train the run; `rank`: this process's rank in a multi-process run (its supervisor records the engine)."""
    run = RunDir(run_dir)
    import psutil

    emitter: Any = Emitter(run.events_path, events_fd) if not rank else RankEmitter(
        lambda message: write_rank_record(run.path, rank or 0, {"pid": os.getpid(), "status": "running",
                                                               "error": message[:1000]}))
    # the control file's requests from this engine's start on (a new run: every one), read before anything slow
    inbox = None if rank else ControlInbox(run.path, since=(launched_at or time.time()) if resume else 0.0)
    control = Control()
    control.install()

    def log(level: str, message: str) -> None:
        emitter.emit(Log(level=level, message=message))

    monitor = None
    started = time.perf_counter()
    trainer = None

    def end(status: str, extra: dict[str, Any], diverged: str | None = None) -> int:
        return _finish(run, emitter, trainer, monitor, status, started, extra, diverged, inbox)

    try:
        if getattr(emitter, "failure", None) is not None:
            raise emitter.failure
        if rank is None:
            write_json(run.file(ENGINE), {"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                          "started": time.time()})
        cfg = load_run_config(run, lambda message: log("warning", message))
        from engine.monitor import SystemMonitor

        if not rank:
            monitor = SystemMonitor(emitter.emit, cfg.monitoring.system_interval_s, run.path if rank == 0 else None)
        trainer = _setup(run, cfg, emitter, control, log, monitor, resume, launched_at, rank is not None, inbox)
        if monitor is not None:
            monitor.start()
        trainer.fit()
        extra = trainer.finish(run.weights_dir)
        if trainer.task_eval is not None:  # the final weights' task scores, as lf-tui eval saves them
            trainer.task_eval.save(run.path, int(extra.get("weights_step", -1)), cfg)
        from engine.deployment import after_training  # sizes and timings: a failure to measure never fails the run

        if not rank:  # rank 0 (or a single process) measures; the other ranks' summaries are never written
            extra["deployment"] = after_training(trainer, run.weights_dir, log)
        return end("completed", extra)
    except Cancelled as exc:
        log("warning", f"cancelled ({exc}); checkpoint saved")
        return end("cancelled", {})
    except Diverged as exc:
        emitter.emit(Error(kind=exc.kind, message=exc.message, hint=exc.hint))
        return end("failed", {**_error_figures(exc), "diverged_at_step": exc.step}, diverged=exc.message)
    except EngineError as exc:
        emitter.emit(Error(kind=exc.kind, message=exc.message, hint=exc.hint))
        return end("failed", _error_figures(exc))
    except Exception as exc:
        if rank is not None and peer_failure(exc):  # another rank died: its supervisor names it and ends the run
            if monitor is not None:
                monitor.stop()
            raise
        disk = disk_error(exc, f"writing into the run folder {run.path} failed", kept_note(run.checkpoints_dir))
        if disk is not None:  # a full (or read-only) disk, wherever the engine was writing
            emitter.emit(Error(kind=disk.kind, message=disk.message, hint=disk.hint))
            return end("failed", _error_figures(disk))
        kind, hint = _classify(exc)
        emitter.emit(Error(kind=kind, message=f"{type(exc).__name__}: {exc}"[:2000], hint=hint,
                           traceback="".join(traceback.format_exc().splitlines(True)[-15:])))
        return end("failed", {"error": str(exc)[:500], "error_kind": kind, "error_hint": hint})
    finally:
        emitter.close()
        if trainer is not None and getattr(trainer, "accelerator", None) is not None:
            try:
                trainer.accelerator.end_training()  # accelerate's own teardown of the process group
            except Exception:
                pass


def _error_figures(exc: EngineError) -> dict[str, str]:
    """The summary's record of why the run failed (the `error` event's kind and hint too, for listings)."""
    return {"error": exc.message, "error_kind": exc.kind, "error_hint": exc.hint}


def _classify(exc: Exception) -> tuple[str, str]:
    text = str(exc).lower()
    if "out of memory" in text or type(exc).__name__ == "OutOfMemoryError":
        return "oom", ("reduce training.batch_size or max_seq_length, set hardware.gradient_checkpointing, "
                       "or use QLoRA")
    return "internal", "this looks like a bug in lf-tui or a library: the traceback is in engine.log"


def _startup_base(launched_at: float | None) -> dict[str, float]:
    entry = getattr(sys.modules.get("__main__"), "ENTRY_TIME", None)
    if entry is None or launched_at is None:
        return {}
    return {"interpreter_s": round(max(0.0, entry - launched_at), 3)}


def _setup(run: RunDir, cfg: Any, emitter: Emitter, control: Control, log: Any, monitor: Any, resume: bool,
           launched_at: float | None = None, distributed: bool = False, inbox: ControlInbox | None = None) -> Any:
    startup = _startup_base(launched_at)
    t = time.perf_counter()
    import peft  # noqa: F401  (timed: the heavy imports)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    startup["imports_s"] = round(time.perf_counter() - t, 3)
    import psutil

    baseline_rss_mb = psutil.Process().memory_info().rss / 2 ** 20  # the runtime, before the model and data
    from engine.batching import pick_padding_reduction
    from engine.data_cache import cached_prepare
    from engine.data_files import SAMPLE_DATASET
    from engine.external_loggers import make_external_logger
    from engine.models import count_parameters, load_tokenizer, resolve_runtime
    from engine.optim import planned_steps
    from engine.trainer import Trainer, global_training

    runtime = resolve_runtime(cfg)
    accelerator = start_accelerator(runtime) if distributed else None
    world = accelerator.num_processes if accelerator is not None else 1
    for note in runtime.notes:
        log("warning", note)
    t = time.perf_counter()
    meta = run.meta()
    # rank 0 first: it builds what is shared (the built-in model's folder, the tokenised data cache), the others read it
    with accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext():
        tokenizer = load_tokenizer(cfg)
        data = cached_prepare(run.path.parent / ".cache" / "tokenized", tokenizer,
                              meta.get("dataset") or str(SAMPLE_DATASET), cfg, meta.get("eval_dataset"))
    startup["data_s"] = round(time.perf_counter() - t, 3)
    for note in data.notes:
        log("warning", note)
    t = time.perf_counter()  # the data first: a method may schedule over the run's steps (AdaLoRA's rank budget)
    if len(data.train) < world:
        raise EngineError("data", f"{len(data.train)} training example(s) for {world} processes: every process "
                          "needs at least one per step", "add examples or lower hardware.distributed.num_processes")
    model, impl = build_model(cfg, runtime, log, planned_steps(len(data.train), global_training(cfg.training, world)))
    startup["model_s"] = round(time.perf_counter() - t, 3)
    mode = pick_padding_reduction(cfg.training.padding_reduction, runtime.device.type)
    rank0 = accelerator is None or accelerator.is_main_process
    external, close_external = (make_external_logger(cfg.monitoring, run.run_id, cfg.model_dump(mode="json"), log,
                                                     run.path, monitor) if rank0 else (lambda figures, step: None, None))
    args = (model, impl, cfg, runtime, data.train, data.eval, tokenizer.pad_token_id, mode, emitter.emit, control,
            run.checkpoints_dir, external)
    if accelerator is not None:
        from engine.distributed_trainer import DistributedTrainer

        trainer: Any = DistributedTrainer(accelerator, *args)
    else:
        trainer = Trainer(*args)
    trainer.close_external = close_external
    trainer.data_format = data.format
    if inbox is not None:  # live controls (checkpoint now, stop after eval); a multi-process run refuses them
        from engine.control_requests import multi_process_refusal
        from engine.live_controls import LiveControls

        trainer.live = LiveControls(trainer, inbox, "" if world == 1 else multi_process_refusal(run.path) or "")
    if cfg.monitoring.eval_tasks and world == 1:  # multiple-choice tasks scored at each evaluation
        from engine.task_eval import TaskEval, load_tasks

        trainer.task_eval = TaskEval(load_tasks(cfg.monitoring.eval_tasks), tokenizer, runtime)
    elif cfg.monitoring.eval_tasks:
        log("warning", "monitoring.eval_tasks is scored in single-process runs only: run lf-tui eval on this run's "
                       "weights when it ends")
    resumed = 0
    if resume:
        checkpoint = run.latest_checkpoint()
        if checkpoint is None:
            raise EngineError("resume", f"{run.path}: no complete checkpoint to resume from",
                              "start a new run with the same config instead")
        trainer.resume_from(checkpoint)
        resumed = trainer.state.step
        log("info", f"resuming from {checkpoint.name}")
    trainable, total = count_parameters(model)
    trainer.planned_peak_bytes = planned_peak(cfg, runtime, data.train)
    if runtime.device.type == "cpu":  # the measured peak there is the process's RSS: the plan excludes the runtime
        trainer.baseline_rss_mb = baseline_rss_mb
    emitter.emit(RunStarted(run_id=run.run_id, method=cfg.method_name, base_model=cfg.base_model,
                            device=str(runtime.device), trainable_params=trainable, total_params=total,
                            train_examples=len(data.train), eval_examples=len(data.eval),
                            total_steps=trainer.total_steps, config_hash=config_hash(cfg), pid=os.getpid(),
                            resumed_from_step=resumed, nvml=monitor.nvml_note if monitor else "",
                            precision=runtime.precision, padding_reduction=mode, truncated_examples=data.truncated,
                            startup=startup, planned_peak_bytes=trainer.planned_peak_bytes, world_size=world,
                            strategy=cfg.hardware.distributed.strategy if world > 1 else ""))
    return trainer


def start_accelerator(runtime: Any) -> Any:
    """This rank's Accelerator (gloo between CPU processes, NCCL between GPUs); the run computes on its device."""
    from accelerate import Accelerator  # type: ignore[import-untyped]

    accelerator = Accelerator(cpu=runtime.device.type == "cpu")
    runtime.device = accelerator.device if accelerator.device.type != "cpu" else runtime.device
    return accelerator


def planned_peak(cfg: Any, runtime: Any, train: list[Any]) -> int:
    """The memory planner's peak for this run on its device, as the editor and `lf-tui plan` show it: at
    training.max_seq_length (an upper bound for shorter examples), the runtime counted on a GPU (CUDA context)
    but not on a CPU (the RSS before the model loaded is recorded apart); 0 when it cannot plan."""
    from engine.planning import PlanError, estimate

    if runtime.device.type not in ("cuda", "cpu"):
        return 0
    try:
        plan = estimate(cfg, runtime.device.type)[0]
    except PlanError:
        return 0
    except Exception:  # the estimate is a nicety: a planner bug must never stop a run that can train
        return 0
    return plan.total


def _finish(run: RunDir, emitter: Emitter, trainer: Any, monitor: Any, status: str, started: float,
            extra: dict[str, Any], diverged: str | None = None, inbox: ControlInbox | None = None) -> int:
    from engine.summary import build_summary

    if monitor is not None:
        monitor.stop()
    meta = run.meta()
    emitter.ensure_started(RunStarted(run_id=run.run_id, method=meta.get("method", ""),
                                      base_model=meta.get("base_model", ""), pid=os.getpid()))
    state = trainer.state if trainer is not None else None
    peak = monitor.peak_gpu_mb or monitor.peak_rss_mb if monitor is not None else 0.0
    if trainer is not None:
        extra = {"data_format": trainer.data_format, **extra}
        if trainer.planned_peak_bytes:
            extra["planned_peak_mb"] = round(trainer.planned_peak_bytes / 2 ** 20, 1)
        if trainer.baseline_rss_mb:
            extra["runtime_memory_mb"] = round(trainer.baseline_rss_mb, 1)
        if state is not None and state.method_metrics:
            extra["method_metrics"] = state.method_metrics  # the method's figures over time, a point per change
    # training time across every segment of a resumed run; before the loop started, this process's time
    elapsed = trainer.elapsed() if trainer is not None else time.perf_counter() - started
    summary = build_summary(status=status, total_steps=state.step if state else 0,
                            losses=state.losses if state else [], eval_losses=state.eval_losses if state else [],
                            training_time_s=elapsed, peak_memory_mb=peak, extra=extra, diverged=diverged)
    if trainer is not None and getattr(trainer, "close_external", None):
        trainer.close_external()
    summary = finite_json(summary)  # strict JSON: a non-finite figure is null
    if not isinstance(emitter, RankEmitter):  # rank 0 (or the only process) writes the run's summary
        try:
            write_json(run.file(SUMMARY), summary)
        except OSError as exc:  # a full disk: the pipe and stderr still carry the ending, engine.json keeps it
            print(f"lf-tui engine: could not write {run.file(SUMMARY)}: {exc}", file=sys.stderr, flush=True)
            note_ending_in_place(run.file(ENGINE), {"status": status, **{k: summary[k] for k in (
                "error", "error_kind", "error_hint") if k in summary}})
    live = getattr(trainer, "live", None)
    if live is not None:  # every control request still waiting is answered before the run's end
        live.at_end(status)
    elif inbox is not None:
        from engine.live_controls import answer_at_end

        answer_at_end(inbox, emitter.emit, state.step if state else 0, status)
    emitter.emit(Finished(status=status, summary=summary))
    return exit_code(status)
