"""`python -m engine.fuse RUN_DIR RUN_DIR ... --weights W,W [--combination C] [--density D] --runs-dir DIR`: one
new adapter from LoRA-family runs on the same base (PEFT's add_weighted_adapter), saved as a new run derived from them.

The new run folder is a completed run like any other (config.json, meta.json, summary.json, events.jsonl, weights/
holding a plain PEFT LoRA adapter): `lf-tui runs`, generate, serve and export take it as they take a trained run.
meta.json and summary.json say `derived_from` (the parents' run ids) and `fusion` (the recipe); config.json is the
first parent's with the fused adapter's rank and the recipe under "fusion". Every check that needs only the runs'
files is made before torch is imported; stdout carries one JSON object: the new run, or the refusal.

PEFT's combinations (peft/tuners/lora/model.py): linear, ties, dare_linear and dare_ties combine the A and B
matrices themselves (sqrt(weight x scaling) on each side) and need equal ranks; cat stacks them (rank: the sum,
exactly the weighted sum of the parents' updates); svd factors the weighted sum of the updates at the largest rank.
ties and dare prune to `density`; dare draws which values it drops from torch's generator (seeded: `--seed`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.run_store import ENGINE, SUMMARY, RunDir, RunStore
from lf_common.files import follow_umask, write_json

COMBINATIONS = ("linear", "cat", "svd", "ties", "dare_linear", "dare_ties")
NEEDS_DENSITY = ("ties", "dare_linear", "dare_ties")
EQUAL_RANKS = ("linear", "ties", "dare_linear", "dare_ties")
LORA_FAMILY = ("lora", "qlora")
FUSED = "default"  # the fused adapter's name in the PEFT model: PEFT saves "default" in the folder itself


def refuse(message: str, hint: str = "") -> EngineError:
    return EngineError("fuse", message, hint)


@dataclass
class Parent:
    run: RunDir
    document: dict[str, Any]  # config.json as written
    cfg: Any  # the resolved config
    weights: Path
    origin: str
    adapter: dict[str, Any]  # adapter_config.json

    @property
    def rank(self) -> int:
        pattern = self.adapter.get("rank_pattern") or {}
        return max([int(self.adapter.get("r") or 0), *(int(v) for v in pattern.values())])

    @property
    def targets(self) -> Any:
        value = self.adapter.get("target_modules")
        return sorted(value) if isinstance(value, list) else value


def check_recipe(n_runs: int, weights: list[float], combination: str, density: float | None) -> None:
    if n_runs < 2:
        raise refuse(f"fusion combines two runs or more ({n_runs} given)", "name the runs to fuse: lf-tui fuse A B ...")
    if len(weights) != n_runs:
        raise refuse(f"{len(weights)} weight(s) for {n_runs} runs", "give one weight per run, e.g. --weights 0.6,0.4")
    if not all(math.isfinite(w) for w in weights):
        raise refuse("a weight is not a finite number", "e.g. --weights 0.6,0.4")
    if combination not in COMBINATIONS:
        raise refuse(f"unknown combination {combination!r}", f"one of {', '.join(COMBINATIONS)}")
    if combination in NEEDS_DENSITY and density is None:
        raise refuse(f"the {combination} combination prunes the adapters: it needs --density",
                     "the share of values kept, between 0 and 1, e.g. --density 0.5")
    if combination not in NEEDS_DENSITY and density is not None:
        raise refuse(f"--density applies to {', '.join(NEEDS_DENSITY)}, not {combination}", "drop --density")
    if density is not None and not 0 < density <= 1:
        raise refuse(f"--density {density:g} is not in (0, 1]", "the share of values kept, e.g. --density 0.5")


def read_parent(path: Path) -> Parent:
    """A run's config and LoRA adapter, or why it cannot be fused (only the run's files are read)."""
    from engine.export import trained_folder
    from engine.runner import load_run_config

    run = RunDir(path)
    if not run.path.is_dir():
        raise refuse(f"{run.path}: no such run folder", "see `lf-tui runs`")
    cfg = load_run_config(run)
    if cfg.method_name not in LORA_FAMILY:
        raise refuse(f"run {run.run_id} is {cfg.method_name}: fusion combines LoRA-family adapters "
                     f"({', '.join(LORA_FAMILY)})", "fuse runs trained with lora or qlora")
    try:
        weights, origin = trained_folder(run)
    except EngineError as exc:
        raise refuse(exc.message, exc.hint) from None
    config_file = weights / "adapter_config.json"
    try:
        adapter = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise refuse(f"{config_file}: not a readable PEFT adapter config ({exc})", "the run's weights are damaged") \
            from None
    parent = Parent(run, run.config() or {}, cfg, weights, origin, adapter)
    why = unfusable(adapter)
    if why:
        raise refuse(f"run {run.run_id}: {why}", "fuse plain LoRA runs (no DoRA, modules_to_save or trained biases)")
    return parent


def unfusable(adapter: dict[str, Any]) -> str | None:
    """Why PEFT cannot weight this LoRA adapter into another correctly, or None."""
    if adapter.get("peft_type") != "LORA":
        return f"its weights are a {adapter.get('peft_type')} adapter, not LoRA"
    if adapter.get("use_dora"):
        return ("it is a DoRA adapter: add_weighted_adapter combines only lora_A and lora_B, so the trained "
                "magnitude vectors would be lost (the fused adapter's are re-initialised from the base)")
    if adapter.get("modules_to_save"):
        return (f"it trains whole modules ({', '.join(adapter['modules_to_save'])}, modules_to_save): their copies "
                "cannot be weighted (PEFT refuses them, and a single one would be fused untrained)")
    if (adapter.get("bias") or "none") != "none":
        return f"it trains biases (bias {adapter['bias']!r}): they are base weights, which the fusion cannot weight"
    if adapter.get("target_parameters"):
        return "it targets parameters (target_parameters), which add_weighted_adapter does not support"
    return None


def same_base(a: str, b: str) -> bool:
    return a == b or (os.path.exists(a) and os.path.exists(b) and os.path.realpath(a) == os.path.realpath(b))


def check_parents(parents: list[Parent], combination: str) -> None:
    """Refuse runs that cannot share one adapter: the reason names the run and what differs."""
    first = parents[0]
    ids = [p.run.run_id for p in parents]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise refuse(f"run {twice[0]} is given twice", "give each run once, with its weight")
    for p in parents[1:]:
        pair = f"runs {first.run.run_id} and {p.run.run_id}"
        if not same_base(first.cfg.base_model, p.cfg.base_model):
            raise refuse(f"{pair} have different base models ({first.cfg.base_model} and {p.cfg.base_model})",
                         "fuse runs trained on the same base model")
        if p.cfg.method_name != first.cfg.method_name:
            raise refuse(f"{pair} use different methods ({first.cfg.method_name} and {p.cfg.method_name})",
                         "fuse runs of one method (lora with lora, qlora with qlora)")
        if p.cfg.trust_remote_code != first.cfg.trust_remote_code:
            raise refuse(f"{pair} differ in trust_remote_code", "fuse runs loaded the same way")
        if p.targets != first.targets:
            raise refuse(f"{pair} adapt different modules ({first.targets} and {p.targets})",
                         "fuse runs with the same target_modules")
        if bool(p.adapter.get("fan_in_fan_out")) != bool(first.adapter.get("fan_in_fan_out")):
            raise refuse(f"{pair} differ in fan_in_fan_out", "fuse runs on the same base model")
        if combination in EQUAL_RANKS and p.rank != first.rank:
            raise refuse(f"{pair} have different ranks ({first.rank} and {p.rank}): the {combination} combination "
                         "adds the A and B matrices, which needs equal ranks",
                         "use --combination cat (rank: the sum) or svd (rank: the largest), or runs of one rank")


def combine(parents: list[Parent], weights: list[float], combination: str, density: float | None, seed: int,
            out: Path) -> int:
    """Write the fused PEFT adapter into `out`; returns its rank. The parents' adapters go onto the base loaded on
    the CPU in its own dtype (full precision, never 4-bit: only their A and B matrices are combined)."""
    import warnings

    import torch
    from peft import PeftModel

    from engine.export import TORCH_DTYPES, resolve_dtype
    from engine.models import Runtime, load_base_model

    cfg = parents[0].cfg
    dtype = getattr(torch, TORCH_DTYPES[resolve_dtype("auto", cfg)])
    base = load_base_model(cfg, Runtime(torch.device("cpu")), dtype=dtype)
    names = [f"parent-{i}" for i in range(len(parents))]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*rank_pattern keys did not match.*")
        model = PeftModel.from_pretrained(base, str(parents[0].weights), adapter_name=names[0])
        for name, parent in zip(names[1:], parents[1:]):
            model.load_adapter(str(parent.weights), adapter_name=name)
    # the fused adapter copies the first parent's config with lora_alpha = r: scaling 1 only without rsLoRA (each
    # parent's own scaling is in the combined matrices already), and no initialisation that would touch the base
    template: Any = model.peft_config[names[0]]  # a LoraConfig
    template.use_rslora, template.init_lora_weights = False, True
    torch.manual_seed(seed)
    stored = adapter_dtype(parents)
    with torch.no_grad(), fp32_adapters(model):
        model.add_weighted_adapter(names, weights, FUSED, combination_type=combination, density=density)
        for name, param in model.named_parameters():
            if f".{FUSED}." in f".{name}." and "lora_" in name:
                param.data = param.data.to(stored)  # written in the parents' dtype, rounded once
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*was active which is now deleted.*")
        for name in names:
            model.delete_adapter(name)
    model.save_pretrained(str(out), selected_adapters=[FUSED], safe_serialization=True)
    from methods.qlora.implementation import QUANTISATION_FILE

    recorded = parents[0].weights / QUANTISATION_FILE  # a QLoRA parent's base quantisation: the fused run's too
    if recorded.is_file():
        shutil.copyfile(recorded, out / QUANTISATION_FILE)
    fused: Any = model.peft_config[FUSED]
    return int(fused.r)


def adapter_dtype(parents: list[Parent]) -> Any:
    """The dtype the parents' adapters are stored in (fp32 as lf-tui trains them; the widest when they differ)."""
    import torch
    from safetensors import safe_open

    names = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
    found = set()
    for parent in parents:
        try:
            with safe_open(str(parent.weights / "adapter_model.safetensors"), "pt") as f:
                found |= {names.get(f.get_slice(k).get_dtype(), torch.float32) for k in f.keys()}
        except OSError:  # a .bin adapter: fp32, as PEFT saves a trained adapter
            found.add(torch.float32)
    return max(found or {torch.float32}, key=lambda d: (d.itemsize, d == torch.float32))


@contextmanager
def fp32_adapters(model: Any) -> Iterator[None]:
    """The model's LoRA matrices in fp32, the ones PEFT's add_weighted_adapter creates too: on a bf16 base PEFT
    makes the fused adapter in the base's dtype and combines into it (a 3e-3 relative error on `cat`, which is exact
    in fp32). The base weights are left as they are."""
    import torch

    def upcast() -> None:
        for name, param in model.named_parameters():
            if "lora_" in name and param.is_floating_point() and param.dtype != torch.float32:
                param.data = param.data.float()

    tuner = model.base_model
    inject = tuner.inject_adapter

    def inject_fp32(*args: Any, **kwargs: Any) -> Any:
        result = inject(*args, **kwargs)
        upcast()  # the new adapter, before add_weighted_adapter writes the combination into it
        return result

    upcast()
    tuner.inject_adapter = inject_fp32
    try:
        yield
    finally:
        del tuner.inject_adapter  # the class's method again


def fused_config(first: Parent, rank: int, recipe: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(first.document))
    spec = document.setdefault("method_specific", {})
    spec.update(r=rank, lora_alpha=rank, use_rslora=False, use_dora=False, init_lora_weights="default")
    spec.pop("pissa_niter", None)
    document["fusion"] = recipe
    return document


def fuse(run_dirs: list[str | Path], weights: list[float], combination: str = "linear",
         density: float | None = None, seed: int = 0, runs_dir: str | Path | None = None) -> dict[str, Any]:
    """Fuse the runs into a new run folder in `runs_dir`; returns what was made (or raises EngineError, the reason)."""
    started = time.perf_counter()
    check_recipe(len(run_dirs), weights, combination, density)
    parents = [read_parent(Path(d)) for d in run_dirs]
    check_parents(parents, combination)
    store = RunStore(runs_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    first = parents[0]
    recipe = {"combination": combination, "weights": weights, "density": density, "seed": seed,
              "parents": [{"run_id": p.run.run_id, "weight": w, "rank": p.rank, "weights_from": p.origin}
                          for p, w in zip(parents, weights)]}
    stage = Path(tempfile.mkdtemp(prefix=".fuse-", dir=store.root))  # dot folders are not runs
    run: RunDir | None = None
    try:
        rank = combine(parents, weights, combination, density, seed, stage)
        recipe["rank"] = rank
        derived = [p.run.run_id for p in parents]
        datasets = sorted({str(p.run.meta().get("dataset") or "the bundled sample dataset") for p in parents})
        run = store.create(f"fused-{first.cfg.method_name}", fused_config(first, rank, recipe),
                           {"method": first.cfg.method_name, "derived_from": derived, "fusion": recipe,
                            "dataset": " + ".join(datasets), "trust_remote_code": first.cfg.trust_remote_code})
        follow_umask(stage)  # the run's weights, shared as its other files are (not mkdtemp's 0700, 0600 files)
        stage.rename(run.weights_dir)
        record(run, first, parents, recipe, started)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if run is not None:
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    summary = run.summary() or {}
    return {"run_id": run.run_id, "path": str(run.path), "method": first.cfg.method_name,
            "base_model": first.cfg.base_model, "derived_from": summary.get("derived_from"), "fusion": recipe,
            "deployment": summary.get("deployment")}


def record(run: RunDir, first: Parent, parents: list[Parent], recipe: dict[str, Any], started: float) -> None:
    """events.jsonl and summary.json of the fused run (its deployment figures measured on the fused adapter)."""
    import psutil

    from engine import deployment
    from engine.emitter import Emitter
    from engine.protocol import Finished, Log, RunStarted, finite_json
    from engine.summary import build_summary

    write_json(run.file(ENGINE), {"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                  "started": time.time()})  # "running" while its figures are measured
    emitter = Emitter(run.events_path)
    try:
        adapter_params, base_params = parameter_counts(run, first)
        emitter.emit(RunStarted(run_id=run.run_id, method=first.cfg.method_name, base_model=first.cfg.base_model,
                                device="cpu", precision="fp32", trainable_params=adapter_params,
                                total_params=adapter_params + base_params, pid=os.getpid()))
        parts = " + ".join(f"{w:g} x {p.run.run_id}" for p, w in zip(parents, recipe["weights"]))
        emitter.emit(Log(level="info", message=f"fused {parts} ({recipe['combination']}"
                                               + (f", density {recipe['density']:g}" if recipe["density"] else "")
                                               + f"): a rank-{recipe['rank']} LoRA adapter"))
        data_format = (first.run.summary() or {}).get("data_format") or first.cfg.data.format
        formats = {(p.run.summary() or {}).get("data_format") for p in parents}
        if len(formats) > 1:
            emitter.emit(Log(level="warning", message=f"the parents were trained on different data formats "
                                                      f"({', '.join(sorted(map(str, formats)))}): the fused run "
                                                      f"prompts in {data_format}, the first parent's"))
        extra = {"data_format": data_format, "derived_from": [p.run.run_id for p in parents], "fusion": recipe,
                 "weights_from": "fused", "weights_step": None}
        partial = build_summary(status="completed", total_steps=0, losses=[], eval_losses=[],
                                training_time_s=time.perf_counter() - started,
                                peak_memory_mb=psutil.Process().memory_info().rss / 2 ** 20, extra=extra)
        partial["convergence"] = {"verdict": "not trained", "reason": "fused from its parents' adapters"}
        write_json(run.file(SUMMARY), finite_json(partial))  # the figures below load the run as a finished one
        figures = deployment.of_run(run)
        emitter.emit(Log(level="warning" if figures.get("not_measured") else "info",
                         message="deployment figures: " + deployment.describe(figures)))
        summary = finite_json({**partial, "deployment": figures})
        write_json(run.file(SUMMARY), summary)
        emitter.emit(Finished(status="completed", summary=summary))
    finally:
        emitter.close()


def parameter_counts(run: RunDir, first: Parent) -> tuple[int, int]:
    """(the fused adapter's values, the base model's parameters), for the run's header; 0 where unreadable."""
    from safetensors import safe_open

    from engine import deployment

    adapter = 0
    try:
        with safe_open(str(run.weights_dir / "adapter_model.safetensors"), "pt") as f:
            adapter = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    except OSError:
        pass
    try:
        base = deployment.base_parameters(first.cfg)
    except Exception:  # a header figure: never a reason to fail the fusion
        base = 0
    return adapter, base


def _json_result(compute: Any) -> int:
    from engine.eval_process import json_result

    return json_result(compute, "the fusion holds the base model once in memory: a machine with more memory")


def weight_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.fuse", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--weights", required=True, type=weight_list)
    parser.add_argument("--combination", choices=COMBINATIONS, default="linear")
    parser.add_argument("--density", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return _json_result(lambda: fuse(args.run_dirs, args.weights, args.combination, args.density, args.seed,
                                     args.runs_dir))


if __name__ == "__main__":
    sys.exit(main())
