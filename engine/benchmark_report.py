"""A run checked against its config's benchmarks block: each threshold, the measured value and pass/fail, or "not
measured" with why. Light (no torch): it reads the run folder (summary, events, eval results); `lf-tui report`,
the Runs screen and the comparison show it."""

from __future__ import annotations

import difflib
import glob
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.protocol import EventReader, RunStarted, System
from engine.run_store import RunDir
from methods.config_models import Benchmarks, parse_duration
from methods.memory_plan import parse_size

PASS, FAIL, NOT_MEASURED = "pass", "fail", "not measured"
MB = 2 ** 20


@dataclass
class Check:
    group: str  # training_efficiency | quality_metrics | resource_metrics
    name: str  # the config key (a downstream task: its name)
    threshold: str  # as written, with its direction: "≤ 24h"
    measured: str  # for people: "0:01:23", "2.1 GiB", "-"
    verdict: str  # pass | fail | not measured
    why: str = ""  # what was measured, or why it was not
    value: float | None = None  # the measured number in the threshold's unit (seconds, bytes, fraction)


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s" if s < 120 else f"{s / 3600:.2f} h"


def _bytes(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 30 else f"{n / MB:.0f} MiB"


def _check(group: str, name: str, threshold: str, value: float | None, limit: float, at_most: bool,
           shown: str, why: str) -> Check:
    sign = "≤" if at_most else "≥"
    if value is None:
        return Check(group, name, f"{sign} {threshold}", "-", NOT_MEASURED, why)
    ok = value <= limit if at_most else value >= limit
    return Check(group, name, f"{sign} {threshold}", shown, PASS if ok else FAIL, why, value)


def _gpu_figures(run: RunDir) -> tuple[str, list[float], float]:
    """(the device the run trained on, every GPU utilisation sample in %, the largest GPU memory used in MB)."""
    device, peak = "", 0.0
    utils: list[float] = []
    reader = EventReader()
    try:
        handle = run.events_path.open("rb")
    except OSError:
        return device, utils, peak
    with handle:
        for line in handle:
            try:
                event = reader.feed(line)
            except Exception:  # an unsupported or damaged line: the rest still counts
                continue
            if isinstance(event, RunStarted):
                device = event.device
            elif isinstance(event, System):
                for gpu in event.gpus:
                    if isinstance(gpu.get("utilization"), (int, float)):
                        utils.append(float(gpu["utilization"]))
                    peak = max(peak, float(gpu.get("memory_used_mb") or 0.0))
    return device, utils, peak


SAMPLE_TASK_NAME = ("sample", "sample_mc")  # `lf-tui eval --tasks sample` saves the bundled file as its stem


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _is_limited(doc: dict[str, Any]) -> bool:
    """Whether an evaluation was limited (one saved before limited ones had their own file: its limit is set)."""
    return bool(doc.get("limited", doc.get("limit") is not None))


FINAL_WEIGHTS = "weights"  # what an eval result's "weights" says (relative to the run) when it scored the final ones


def _scored(doc: dict[str, Any]) -> str | None:
    """The weights an eval result scored, relative to the run folder ("weights": the final ones), or None."""
    weights = doc.get("weights")
    return weights if isinstance(weights, str) and weights else None


def _eval_result(run: RunDir, task: str) -> tuple[dict[str, Any] | None, str]:
    """(the trained model's full result for `task` (a task file's path or stem, `sample`, or an lm-eval name) on the
    run's final weights, ""), or (None, why there is none to judge): not evaluated, only a limited evaluation, or
    only other weights (a checkpoint) scored. Only a full evaluation of the final weights is ever judged."""
    name = Path(task).stem if task.endswith((".jsonl", ".json")) else task
    name = SAMPLE_TASK_NAME[1] if name == SAMPLE_TASK_NAME[0] else name
    again = f"lf-tui eval {run.run_id} --tasks {task}"
    doc = _read(run.path / "eval" / f"{name}.json")
    trained = (doc.get("models") or {}).get("trained") if doc else None
    full = isinstance(trained, dict) and doc is not None and not _is_limited(doc)
    if full and doc is not None and _scored(doc) == FINAL_WEIGHTS:
        return trained, ""
    if full and doc is not None:
        scored = _scored(doc)
        what = (f"only {scored} was scored (a checkpoint, not the run's final weights)" if scored
                else "its saved result does not say which weights it scored")
        then = f"run {again}" if run.weights_dir.is_dir() else f"once the run has its final weights, run {again}"
        return None, f"{what}; {then}"
    limited = [d for d in (_read(p) for p in (run.path / "eval").glob(f"{glob.escape(name)}@limit*.json")) if d]
    limited += [doc] if isinstance(trained, dict) and doc is not None else []
    if not limited:
        return None, f"not evaluated yet: {again}"
    counts = [((d.get("models") or {}).get("trained") or {}).get("count") for d in limited]
    numbers = [c for c in counts if isinstance(c, int)]
    return None, f"only a limited evaluation ({max(numbers) if numbers else 0} questions) exists; run {again}"


def unknown_keys(bench: Any) -> list[str]:
    """Problems in the benchmarks block: each unknown key (a typo is otherwise silently ignored), with the
    nearest known name."""
    if not isinstance(bench, dict):
        return [f"benchmarks: must be an object of {', '.join(Benchmarks.model_fields)}"] if bench else []
    out = []
    for key, value in bench.items():
        section = Benchmarks.model_fields.get(key)
        if section is None:
            out.append(f"benchmarks.{key}: {_unknown(key, list(Benchmarks.model_fields))}")
            continue
        model = section.annotation
        if not isinstance(value, dict) or model is None or not hasattr(model, "model_fields"):
            continue
        out += [f"benchmarks.{key}.{name}: {_unknown(name, list(model.model_fields))}" for name in value
                if name not in model.model_fields]
    return out


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]}?)" if close else f"unknown key (known: {', '.join(known)})"


def _section(bench: dict[str, Any], key: str) -> dict[str, Any]:
    value = bench.get(key)
    return value if isinstance(value, dict) else {}


def report(run: RunDir) -> dict[str, Any]:
    """{"run_id", "verdict": pass | fail | incomplete | no thresholds, "checks": [Check as dict, ...],
    "problems": [the benchmarks block's unknown keys, ...]}."""
    cfg = run.config() or {}
    bench = cfg.get("benchmarks") or {}
    problems = unknown_keys(bench)
    if not isinstance(bench, dict):
        bench = {}
    summary = run.summary() or {}
    checks: list[Check] = []
    unfinished = "" if summary else "the run has not finished (no summary yet)"
    eff, quality, res = (_section(bench, k) for k in ("training_efficiency", "quality_metrics", "resource_metrics"))
    if eff.get("max_training_time"):
        t = summary.get("training_time_s")
        checks.append(_check("training_efficiency", "max_training_time", eff["max_training_time"], t,
                             parse_duration(eff["max_training_time"]), True, _seconds(t or 0),
                             unfinished or "training time over every segment of the run"))
    device, utils, gpu_peak_mb = _gpu_figures(run)
    on_gpu = device.startswith("cuda")
    if eff.get("memory_budget"):
        peak = summary.get("peak_memory_mb")
        value = peak * MB if isinstance(peak, (int, float)) else None
        what = "the CUDA allocator's peak" if on_gpu else "the engine process's peak resident memory (a CPU run)"
        checks.append(_check("training_efficiency", "memory_budget", eff["memory_budget"], value,
                             parse_size(eff["memory_budget"]), True, _bytes(value or 0), unfinished or what))
    if eff.get("convergence_threshold") is not None:
        conv = summary.get("convergence") or {}
        change = conv.get("recent_change_pct")
        value = abs(change) / 100 if isinstance(change, (int, float)) else None
        why = unfinished or (f"verdict {conv.get('verdict')}: the loss changed {change}% over the last "
                             f"{conv.get('window_steps')} logged steps" if value is not None
                             else f"verdict {conv.get('verdict', '?')}: {conv.get('reason', 'no loss window')}")
        checks.append(_check("training_efficiency", "convergence_threshold", str(eff["convergence_threshold"]),
                             value, float(eff["convergence_threshold"]), True, f"{value:.4f}" if value is not None
                             else "-", why))
    if quality.get("perplexity_threshold") is not None:
        ppl = summary.get("best_perplexity")
        checks.append(_check("quality_metrics", "perplexity_threshold", str(quality["perplexity_threshold"]), ppl,
                             float(quality["perplexity_threshold"]), True, f"{ppl:.3g}" if ppl else "-",
                             unfinished or ("the best eval loss's perplexity" if ppl else "the run has no eval set")))
    minimum = quality.get("minimum_accuracy")
    for task in quality.get("downstream_tasks") or []:
        result, why = _eval_result(run, str(task))
        acc = result.get("acc") if result else None
        if result:
            why = (f"acc on {result.get('count')} questions (acc_norm {result.get('acc_norm', 0):.3f}), the final "
                   "weights")
        if minimum is None:
            checks.append(Check("quality_metrics", str(task), "-", f"{acc:.3f}" if acc is not None else "-",
                                NOT_MEASURED if acc is None else "info", why, acc))
        else:
            checks.append(_check("quality_metrics", str(task), f"{minimum:g} acc", acc, float(minimum), False,
                                 f"{acc:.3f}" if acc is not None else "-", why))
    no_gpu = f"a {device or 'CPU'} run: no GPU to measure"
    if res.get("max_gpu_memory"):
        peak = summary.get("peak_memory_mb") if on_gpu else None
        value = max(float(peak or 0), gpu_peak_mb) * MB if on_gpu else None
        checks.append(_check("resource_metrics", "max_gpu_memory", res["max_gpu_memory"], value,
                             parse_size(res["max_gpu_memory"]), True, _bytes(value or 0),
                             "the larger of the allocator's peak and NVML's memory used" if on_gpu else no_gpu))
    if res.get("min_gpu_utilization") is not None:
        value = sum(utils) / len(utils) / 100 if on_gpu and utils else None
        why = (f"the mean of {len(utils)} NVML samples" if value is not None
               else no_gpu if not on_gpu else "no NVML samples (nvidia-ml-py missing, or the run was too short)")
        checks.append(_check("resource_metrics", "min_gpu_utilization", f"{res['min_gpu_utilization']:g}", value,
                             float(res["min_gpu_utilization"]), False, f"{value:.2f}" if value is not None else "-",
                             why))
    if res.get("max_inference_latency"):
        deployment = summary.get("deployment") or {}
        first = deployment.get("first_token_s")
        why = (f"first-token latency measured after training on {deployment.get('device') or device}"
               if first is not None else unfinished or deployment.get("not_measured") or "not measured")
        checks.append(_check("resource_metrics", "max_inference_latency", res["max_inference_latency"], first,
                             parse_duration(res["max_inference_latency"]), True, _seconds(first or 0), why))
    verdicts = {c.verdict for c in checks}
    verdict = ("no thresholds" if not checks else FAIL if FAIL in verdicts
               else "incomplete" if NOT_MEASURED in verdicts else PASS)
    return {"run_id": run.run_id, "verdict": verdict, "checks": [asdict(c) for c in checks], "problems": problems}


_CACHE: dict[str, tuple[tuple[float, ...], str]] = {}


def verdict(run: RunDir) -> str:
    """report(run)["verdict"], recomputed only when the run's config, summary or eval results change."""
    stamps = []
    for path in (run.path / "config.json", run.path / "summary.json", run.path / "eval"):
        try:
            stamps.append(os.stat(path).st_mtime)
        except OSError:
            stamps.append(0.0)
    key = tuple(stamps)
    cached = _CACHE.get(str(run.path))
    if cached is None or cached[0] != key:
        try:
            cached = (key, str(report(run)["verdict"]))
        except (ValueError, TypeError, AttributeError):  # a config edited by hand into something unreadable
            cached = (key, "unreadable")
        _CACHE[str(run.path)] = cached
    return cached[1]
