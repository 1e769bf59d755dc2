"""Peak memory of the loss on a 128k-vocabulary model: the engine's chunked loss vs the Trainer+PEFT default.

    python benchmarks/logits_memory.py                       # Llama, vocab 128256, hidden 256, 2 layers, batch 4 x 512
    python benchmarks/logits_memory.py --vocab 512           # the same at a small vocabulary (speed of the chunking)

Each variant runs in a fresh process on the same saved model with LoRA (r 16 on q_proj/v_proj, fp32, no dropout) and
the same batches (random tokens, every position a target: the engine's worst case, no masked prompt):

- engine: engine.loss as the engine's Trainer._loss_sum calls it (chunked_supported -> chunked_loss_sum);
- engine_plain: the engine's plain path (full logits, target rows gathered and upcast: summed_loss);
- trainer_peft: model(**batch, labels=labels).loss, the transformers default that Trainer + PEFT uses.

Peak memory: on CUDA, torch.cuda.max_memory_allocated above what is allocated after the model is built; on CPU, the
process's peak RSS (VmHWM, reset through /proc/self/clear_refs after the model is built; else ru_maxrss) above its
RSS at that point. The step time is the median over the steps after the first. Prints a markdown table and, last,
one JSON line.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = ("engine", "engine_plain", "trainer_peft")
TARGET_RATIO = 0.7  # engine peak / trainer_peft peak (issue 12)


def make_model(folder: Path, vocab: int, hidden: int, layers: int) -> Path:
    """A random Llama with `vocab` tokens (untied head, as Llama 3), saved with the built-in tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.builtin_model import tiny_tokenizer

    heads = max(2, hidden // 64)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
                         initializer_range=0.02)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)  # (the batches are random ids; the engine's config wants a tokenizer)
    return folder


# --- one variant, in its own process ---------------------------------------------------------------------------

def _rss_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _release() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back, so the RSS baseline is what is live
    except (OSError, AttributeError):
        pass


class PeakMeter:
    """Peak memory above the moment of start(): CUDA allocator peak, or peak RSS on CPU."""

    def __init__(self, device: Any):
        self.device = device

    def start(self) -> None:
        import torch

        _release()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.how = "torch.cuda.max_memory_allocated"
            return
        self.base = _rss_bytes("VmRSS") or 0
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (the peak RSS) to the current RSS
            self.how = "peak RSS (VmHWM, reset after the model is built)"
        except OSError:
            self.base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.how = "peak RSS (ru_maxrss; a lower bound if building the model peaked higher)"

    def peak_above_start(self) -> int:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.base
        if self.how.startswith("peak RSS (VmHWM"):
            return (_rss_bytes("VmHWM") or 0) - self.base
        return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - max(self.base, self.base_max))


def run_variant(name: str, model_dir: str, batch: int, seq: int, steps: int, device_name: str) -> dict[str, Any]:
    import torch

    from engine.loss import chunk_rows, chunked_loss_sum, chunked_supported, plain_loss_sum
    from engine.models import resolve_runtime
    from engine.runner import build_model
    from methods.validation import validate_config

    torch.set_num_threads(torch.get_num_threads())
    doc = {"method": "lora", "base_model": model_dir,
           "method_specific": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
           "training": {"max_steps": steps, "batch_size": batch, "seed": 0},
           "hardware": {"mixed_precision": "no", "device": device_name}}
    cfg = validate_config(doc).config
    assert cfg is not None
    runtime = resolve_runtime(cfg)
    model, _ = build_model(cfg, runtime, lambda level, message: None)  # the same LoRA model for every variant
    model.train()
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(3, vocab, (batch, seq), generator=generator) for _ in range(steps)]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dev = runtime.device

    def loss_of(ids: torch.Tensor) -> torch.Tensor:
        inputs = {"input_ids": ids.to(dev), "attention_mask": torch.ones_like(ids, device=dev)}
        labels = inputs["input_ids"]
        targets = labels.shape[0] * (labels.shape[1] - 1)
        if name == "engine":
            assert chunked_supported(model, inputs)
            return chunked_loss_sum(model, inputs, labels) / targets
        if name == "engine_plain":
            return plain_loss_sum(model, inputs, labels) / targets
        return model(**inputs, labels=labels, use_cache=False).loss  # transformers' ForCausalLMLoss (the mean)

    if name == "engine":
        chunked_supported(model, {"input_ids": batches[0][:1, :8].to(dev)})  # the one-off probe, before measuring
    meter = PeakMeter(dev)
    meter.start()
    times, losses = [], []
    for ids in batches:
        t = time.perf_counter()
        loss = loss_of(ids)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    peak = meter.peak_above_start()
    return {"variant": name, "peak_bytes": peak, "step_s": statistics.median(times[1:] or times), "losses": losses,
            "measured": meter.how, "device": dev.type, "vocab": vocab, "chunk_rows": chunk_rows(vocab),
            "threads": torch.get_num_threads()}


# --- the driver ------------------------------------------------------------------------------------------------

def exactness(model_dir: str, device_name: str) -> float:
    """Relative difference of the engine's chunked loss and the plain loss on one small batch of this model."""
    import torch
    from transformers import AutoModelForCausalLM

    from engine.loss import chunked_loss_sum, plain_loss_sum

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.randint(3, model.config.vocab_size, (2, 64), generator=torch.Generator().manual_seed(1))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        plain = float(plain_loss_sum(model, inputs, ids))
        chunked = float(chunked_loss_sum(model, inputs, ids, rows=37))
    return abs(chunked - plain) / abs(plain)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # the child process
        print(json.dumps(run_variant(args.variant, args.model_dir, args.batch, args.seq, args.steps, args.device)))
        return 0

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(make_model(Path(tmp) / "model", args.vocab, args.hidden, args.layers))
        rel = exactness(model_dir, args.device)
        for name in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--variant", name, "--model-dir", model_dir,
                                  "--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
                                  "--device", args.device], capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["trainer_peft"]
    first = results["engine"]
    logits_mb = args.batch * args.seq * args.vocab * 4 / 2**20
    print(f"model: Llama, vocab {args.vocab}, hidden {args.hidden}, {args.layers} layers, LoRA r16 q/v, fp32; batch "
          f"{args.batch} x seq {args.seq} (fp32 logits of the batch: {logits_mb:.0f} MB); {args.steps} steps; "
          f"device {first['device']} ({first['threads']} threads); chunk {first['chunk_rows']} rows; "
          f"memory: {first['measured']}")
    print()
    print("| loss path | peak memory above the built model | vs Trainer+PEFT | step time | vs Trainer+PEFT |")
    print("|---|---|---|---|---|")
    labels = {"engine": "engine (chunked, engine/loss.py)", "engine_plain": "engine, plain path (full logits)",
              "trainer_peft": "Trainer+PEFT default (`model(..., labels=).loss`)"}
    for name in VARIANTS:
        r = results[name]
        print(f"| {labels[name]} | {r['peak_bytes'] / 2**20:.0f} MB | {r['peak_bytes'] / base['peak_bytes']:.2f}x "
              f"| {r['step_s']:.2f} s | {r['step_s'] / base['step_s']:.2f}x |")
    print()
    ratio = first["peak_bytes"] / base["peak_bytes"]
    print(f"peak ratio engine / Trainer+PEFT: {ratio:.3f} (target <= {TARGET_RATIO}); chunked vs plain loss: "
          f"{rel:.1e} relative; first-step losses: " + ", ".join(f"{n} {results[n]['losses'][0]:.6f}" for n in VARIANTS))
    summary = {"peak_ratio_engine_vs_trainer": ratio, "target": TARGET_RATIO, "exactness_rel": rel,
               "step_ratio_engine_vs_trainer": first["step_s"] / base["step_s"],
               "step_ratio_engine_vs_plain": first["step_s"] / results["engine_plain"]["step_s"],
               "peak_mb": {n: r["peak_bytes"] / 2**20 for n, r in results.items()},
               "step_s": {n: r["step_s"] for n, r in results.items()}}
    print(json.dumps(summary))
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
