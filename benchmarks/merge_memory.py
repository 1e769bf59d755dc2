"""Peak memory of a merged export: the streamed merge (one shard at a time) against the in-memory one (the whole base
loaded, PEFT's merge_and_unload, save_pretrained), each in a fresh `python -m engine.export` process.

`python benchmarks/merge_memory.py [--hidden 1024] [--layers 16] [--shard-mb 100]` builds a random Llama of that
shape (vocab 32000) saved in safetensors shards of at most --shard-mb, a LoRA run on it (a random r=16 adapter on
every linear layer, written as the run's trained weights: the merge's memory does not depend on the values), exports
it merged both ways in fp32 and bf16, checks both give the same tensors, and prints one JSON line and a Markdown table.
Peak RSS is the process's own high-water mark (VmHWM, read as it exits); the floor is a process that only imports
torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# run a module (or code) in this very process and write its peak resident set (VmHWM: the high-water mark of the
# process's own memory since exec, not the parent's pages a forked child starts with, as ru_maxrss counts) to a file
PROBE = """import atexit, os, re, runpy, sys
def report():
    status = open("/proc/self/status").read()
    open(os.environ["PEAK_RSS_FILE"], "w").write(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
atexit.register(report)
sys.argv = sys.argv[1:]
if sys.argv[0] == "-c":
    exec(sys.argv[1])
else:
    runpy.run_module(sys.argv[0], run_name="__main__")
"""


def peak_rss(args: list[str], root: Path) -> tuple[float, float, int]:
    """(peak resident MB, wall seconds, exit status) of `python -m args...` (or `-c CODE`) in a fresh process."""
    from engine.launcher import engine_env

    report = root / "peak.txt"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=str(ROOT), env={**engine_env(),
                          "PEAK_RSS_FILE": str(report)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return int(report.read_text()) / 1024, wall, proc.returncode


def build(root: Path, hidden: int, layers: int, shard_mb: int) -> tuple[Path, Any, int]:
    """The sharded base folder, a LoRA run on it (its adapter written as the trained weights), the parameters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    from engine.builtin_model import special_token_ids, tiny_tokenizer
    from engine.run_store import RunStore
    from methods.validation import validate_config

    tokenizer = tiny_tokenizer()
    special: dict[str, Any] = {**special_token_ids(tokenizer), "vocab_size": 32000}
    config = LlamaConfig(hidden_size=hidden, intermediate_size=hidden * 11 // 4 // 64 * 64, num_hidden_layers=layers,
                         num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         **special)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    base = root / "base"
    model.save_pretrained(str(base), max_shard_size=f"{shard_mb}MB")
    tokenizer.save_pretrained(str(base))
    resolved = validate_config({"method": "lora", "base_model": str(base), "hardware": {"mixed_precision": "no"},
                                "method_specific": {"r": 16, "target_modules": "all-linear"}})
    assert resolved.report.ok and resolved.config is not None, resolved.report.to_dict()
    run = RunStore(root / "runs").create("lora", resolved.config.model_dump(mode="json"))
    adapter = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                               init_lora_weights=False, task_type="CAUSAL_LM"))
    adapter.save_pretrained(str(run.weights_dir))
    return base, run, params


def same_tensors(a: Path, b: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    def read(folder: Path) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for file in sorted(folder.glob("*.safetensors")):
            found.update(load_file(str(file)))
        return found

    x, y = read(a), read(b)
    return set(x) == set(y) and all(torch.equal(x[k], y[k]) for k in x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--shard-mb", type=int, default=100)
    parser.add_argument("--dtypes", default="fp32,bf16", help="the merged dtypes to measure, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="merge-memory-") as tmp:
        root = Path(tmp)
        base, run, params = build(root, args.hidden, args.layers, args.shard_mb)
        shards = sorted(p.stat().st_size for p in base.glob("*.safetensors"))
        floor, _, _ = peak_rss(["-c", "import torch, transformers, safetensors"], root)
        rows = []
        for dtype in args.dtypes.split(","):
            outs = {}
            for path in ("streaming", "in-memory"):
                out = root / f"{path}-{dtype}"
                rss, wall, code = peak_rss(["engine.export", str(run.path), "--out", str(out), "--merged", "--dtype",
                                            dtype, "--merge-path", path], root)
                assert code == 0, f"{path} {dtype} export failed"
                manifest = json.loads((out / "lf_tui_export.json").read_text())
                assert manifest["merge_path"] == path, manifest
                outs[path] = out
                rows.append({"dtype": dtype, "path": path, "peak_rss_mb": round(rss), "above_floor_mb": round(rss - floor),
                             "wall_s": round(wall, 1)})
            rows[-1]["equal_tensors"] = rows[-2]["equal_tensors"] = same_tensors(outs["streaming"], outs["in-memory"])
        result = {"params": params, "base_mb_fp32": round(sum(shards) / 2**20), "shards": len(shards),
                  "largest_shard_mb": round(shards[-1] / 2**20), "floor_mb": round(floor), "rows": rows}
    print(json.dumps(result))
    print(f"\nLlama {params / 1e6:.0f}M parameters, {result['base_mb_fp32']} MB in fp32 as {len(shards)} shards (largest "
          f"{result['largest_shard_mb']} MB); floor (a process that imports torch and transformers) {result['floor_mb']} MB\n")
    print("| dtype | merge path | peak RSS (MB) | above floor (MB) | wall (s) | same tensors |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['dtype']} | {row['path']} | {row['peak_rss_mb']} | {row['above_floor_mb']} | {row['wall_s']} | "
              f"{row['equal_tensors']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
