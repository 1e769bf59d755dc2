"""lf-tui benchmarks: training throughput side by side, the UI's cost, and the engine's start-up overhead.

    python benchmarks/run.py            # real scale for this CPU (tens of millions of parameters)
    python benchmarks/run.py --quick    # a few minutes on a 2-core CPU
The last line printed is one JSON object with every ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ui_cost import ingest, startup  # noqa: E402
from benchmarks.workload import lora_config, make_dataset, make_model  # noqa: E402


def engine_variant(model: str, data: str, steps: int, batch: int, seq: int, padding: str, runs_dir: Path) -> dict:
    """Our engine, started as the TUI starts it (launch + event pipe), monitoring on."""
    from engine.launcher import launch
    from engine.protocol import Step
    from engine.run_store import RunStore
    from lf_tui.run_setup import create_run
    from methods.validation import validate_config

    cfg = validate_config(lora_config(model, steps, batch, seq, padding)).config
    run = create_run(RunStore(runs_dir), cfg, data, None)
    proc = launch(run)
    step_events = [e for e in proc.events() if isinstance(e, Step)]
    assert proc.wait() == 0, (run.path / "engine.log").read_text()[-2000:]
    first, last = step_events[0], step_events[-1]
    return {"tokens": last.tokens - first.tokens, "seconds": last.elapsed_s - first.elapsed_s}


def other_variant(name: str, model: str, data: str, steps: int, batch: int, seq: int) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "variants.py"), name, model, data, str(steps),
                          str(batch), str(seq)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def matmul_flops(n: int = 1024, repeats: int = 20) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def model_flops_per_token(model_dir: str) -> float:
    """LoRA on a frozen base: forward 2N plus backward activation gradients 2N (no base weight gradients)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    per_layer = 4 * c.hidden_size**2 + 3 * c.hidden_size * c.intermediate_size
    n = c.num_hidden_layers * per_layer + c.hidden_size * c.vocab_size  # + lm_head
    return 4 * n


def first_step(runs_dir: Path) -> dict:
    """`lf-tui quick-train` on the built-in model: wall time to the first step line, and the engine's split."""
    from engine.protocol import RunStarted
    from engine.run_store import RunStore

    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lf_tui", "quick-train", "-m", "lora", "--max-steps", "3",
                             "--plain", "--runs-dir", str(runs_dir)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            stdin=subprocess.DEVNULL)
    first = None
    for line in proc.stdout:
        if line.startswith("step 1/") and first is None:
            first = time.perf_counter() - t
    proc.wait()
    run = RunStore(runs_dir).list()[0]
    from engine.launcher import follow_events
    from engine.run_store import RunDir

    started = next(e for e in follow_events(RunDir(run.path), follow=False) if isinstance(e, RunStarted))
    return {"first_step_s": first, **started.startup}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes on 2 CPU cores")
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--ui-events", type=int)
    args = parser.parse_args()
    hidden = args.hidden or (256 if args.quick else 512)
    layers = args.layers or (4 if args.quick else 8)
    steps = args.steps or (10 if args.quick else 30)
    repeats = args.repeats or (2 if args.quick else 3)
    ui_events = args.ui_events or (200_000 if args.quick else 1_000_000)
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        model = str(make_model(tmpdir / "model", hidden, layers))
        data = str(make_dataset(tmpdir / "data.jsonl", max(200, steps * args.batch * 2)))
        print(f"model: hidden {hidden}, {layers} layers; {steps} steps of batch {args.batch}; {repeats} repeats")
        variants = {
            "bare": lambda: other_variant("bare", model, data, steps, args.batch, args.seq),
            "trainer": lambda: other_variant("trainer", model, data, steps, args.batch, args.seq),
            "trainer_grouped": lambda: other_variant("trainer_grouped", model, data, steps, args.batch, args.seq),
            "engine": lambda: engine_variant(model, data, steps, args.batch, args.seq, "auto", tmpdir / "runs"),
            "engine_nopad_reduction": lambda: engine_variant(model, data, steps, args.batch, args.seq, "off",
                                                             tmpdir / "runs"),
        }
        for r in range(repeats):  # interleaved, so drifts in machine speed hit every variant alike
            for name, fn in variants.items():
                res = fn()
                results.setdefault(name, []).append(res["tokens"] / res["seconds"])
                print(f"  repeat {r + 1} {name:24s} {results[name][-1]:10.0f} real tokens/s", flush=True)
        peak = matmul_flops()
        flops_token = model_flops_per_token(model)
        med = {k: statistics.median(v) for k, v in results.items()}
        first = first_step(tmpdir / "first")
    ui = ingest(ui_events)
    start = startup(3 if args.quick else 5)
    summary = {
        "engine_vs_trainer_nopack": med["engine_nopad_reduction"] / med["trainer"],
        "engine_vs_trainer": med["engine"] / med["trainer"],
        "engine_vs_trainer_grouped": med["engine"] / med["trainer_grouped"],
        "engine_vs_bare": med["engine"] / med["bare"],
        "mfu_engine": med["engine"] * flops_token / peak,
        "mfu_bare": med["bare"] * flops_token / peak,
        "mfu_trainer": med["trainer"] * flops_token / peak,
        "mfu_trainer_grouped": med["trainer_grouped"] * flops_token / peak,
        "matmul_gflops": peak / 1e9,
        "ui_events_per_s": ui["events_per_s"],
        "ui_peak_rss_mb": ui["model_peak_mb"],
        "ui_peak_mb_at_half": ui["model_peak_mb_half"],
        "ui_redraw_ms": ui["redraw_ms"],
        "validate_config_vs_python": start["validate_config_vs_python"],
        "tui_first_frame_vs_python": start["tui_first_frame_vs_python"],
        "torch_imported_by_validate": start["torch_imported_by_validate"],
        "torch_imported_by_tui": start["torch_imported_by_tui"],
        "first_step_s": first["first_step_s"],
        "first_step_split_s": {k: v for k, v in first.items() if k != "first_step_s"},
        "tokens_per_s": med,
    }
    print("\nratio                         value   target")
    for key, target in (("engine_vs_trainer", ">= 1.5"), ("engine_vs_trainer_grouped", ">= 1.0"),
                        ("engine_vs_bare", ">= 0.9"), ("engine_vs_trainer_nopack", ">= 0.98"),
                        ("ui_events_per_s", "> 50000"), ("ui_redraw_ms", "< 50"),
                        ("validate_config_vs_python", ""), ("tui_first_frame_vs_python", "")):
        print(f"{key:28s} {summary[key]:9.3f}   {target}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
