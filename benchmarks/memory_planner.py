"""The memory planner against measured peaks: every method at three model sizes, `lf-tui probe`'s measurement
beside `lf-tui plan`'s estimate (CPU here; on a GPU too when one is visible). Prints a markdown table.

Usage: python benchmarks/memory_planner.py [--sizes S,M,L] [--methods lora,qlora,...] [--batch 2] [--seq 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Llama-shaped random models large enough that the model, not the runtime, dominates (60M-270M parameters)
SIZES = {
    "S": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4),
    "M": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
              num_key_value_heads=4),
    "L": dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=16, num_attention_heads=16,
              num_key_value_heads=8),
}
VOCAB = 32000


def build(folder: Path, size: str) -> Path:
    from transformers import LlamaConfig

    from engine.builtin_model import save_random_model, special_token_ids, tiny_tokenizer

    target = folder / f"llama-{size}"
    if not (target / "config.json").is_file():
        tokenizer = tiny_tokenizer()
        ids = {**special_token_ids(tokenizer), "vocab_size": VOCAB}
        save_random_model(target, LlamaConfig(**ids, **SIZES[size], tie_word_embeddings=False), tokenizer)
    return target


def measure(config: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "engine", "probe", str(config), "--steps", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    try:
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return {"error": proc.stderr[-500:]}


LLAMA3_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False}
# (label, method, method_specific, hardware, LLaMA-Factory's 7B figure, Spheron's 7B/8B figure), batch 1 x 512
PUBLISHED = [
    ("full, bf16 mixed precision, AdamW", "full_finetune", {}, {}, "120GB", "~88 GB"),
    ("full, pure bf16", "full_finetune", {}, {"pure_bf16": True}, "60GB", ""),
    ("LoRA r=16 (q,v), bf16 base", "lora", {"r": 16, "lora_alpha": 32}, {}, "16GB", ""),
    ("LoRA r=64 all-linear, bf16 base", "lora", {"r": 64, "lora_alpha": 128, "target_modules": "all-linear"}, {},
     "", "~20 GB"),
    ("QLoRA 8-bit r=16", "qlora", {"r": 16, "lora_alpha": 32, "load_in_4bit": False}, {}, "10GB", ""),
    ("QLoRA 4-bit NF4 r=16", "qlora", {"r": 16, "lora_alpha": 32}, {}, "6GB", "~8 GB"),
]


def published(folder: Path) -> None:
    """The planner beside two published GPU tables for 7B-class models (batch 1, 512 tokens, no checkpointing)."""
    from engine.planning import estimate
    from methods.catalogue import METHODS_DIR
    from methods.validation import validate_config

    (folder / "llama-3-8b").mkdir(parents=True, exist_ok=True)
    (folder / "llama-3-8b" / "config.json").write_text(json.dumps(LLAMA3_8B))
    models = {"Llama-2-7B": str(METHODS_DIR / "reference_models" / "llama-2-7b"),
              "Llama-3-8B": str(folder / "llama-3-8b")}
    print("| setting | LLaMA-Factory (7B) | Spheron (7B/8B) | planner Llama-2-7B | planner Llama-3-8B |")
    print("|---|---|---|---|---|")
    for label, method, specific, hardware, factory, spheron in PUBLISHED:
        cells = []
        for model in models.values():
            document = {"method": method, "base_model": model, "method_specific": specific,
                        "training": {"batch_size": 1, "max_seq_length": 512},
                        "hardware": {"gradient_checkpointing": False, **hardware}}
            cfg = validate_config(document).config
            assert cfg is not None, label
            cells.append(f"{estimate(cfg, 'cuda')[0].total / 2**30:.1f} GiB")
        print(f"| {label} | {factory or '—'} | {spheron or '—'} | {cells[0]} | {cells[1]} |")


def main() -> int:
    from engine.planning import estimate
    from methods.catalogue import get_catalogue
    from methods.validation import validate_config

    parser = argparse.ArgumentParser()
    parser.add_argument("--published", action="store_true", help="only the comparison with published GPU tables")
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--methods", default=",".join(get_catalogue().names()))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--precision", default="auto", help="hardware.mixed_precision: auto (bf16 on this CPU) or no")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "lf-tui-memory-bench")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    if args.published:
        published(args.folder)
        return 0
    rows, errors = [], []
    for size in args.sizes.split(","):
        model = build(args.folder, size)
        for method in args.methods.split(","):
            document = {"method": method, "base_model": str(model),
                        "training": {"batch_size": args.batch, "max_seq_length": args.seq},
                        "hardware": {"mixed_precision": args.precision}}
            config = args.folder / f"{method}-{size}.json"
            config.write_text(json.dumps(document))
            cfg = validate_config(document).config
            assert cfg is not None, method
            measured = measure(config)
            if "error" in measured:
                print(f"{size} {method}: {measured['error']}", file=sys.stderr)
                continue
            plan = estimate(cfg, "cpu", seq_len=args.seq)[0]
            peak = int(measured["peak_bytes"])  # type: ignore[call-overload]
            error = (plan.total - peak) / peak
            errors.append(abs(error))
            rows.append(f"| {size} ({plan.params / 1e6:.0f}M) | {method} | {measured['precision']} | "
                        f"{peak / 2**20:,.0f} | {plan.total / 2**20:,.0f} | {100 * error:+.1f}% |")
            print(rows[-1], flush=True)
    print(f"\nbatch {args.batch} x {args.seq} tokens, mixed_precision {args.precision}, 2 optimizer steps, CPU peak RSS "
          "above the post-import baseline\n")
    print("| model | method | precision | measured MiB | planned MiB | planner error |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    if errors:
        print(f"\nmean |error| {100 * sum(errors) / len(errors):.1f}%, worst {100 * max(errors):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
