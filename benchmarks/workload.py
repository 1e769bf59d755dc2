"""The benchmark workload: a Llama of a chosen size, alpaca-like data of realistic lengths, a LoRA config."""

from __future__ import annotations

import json
import random
from pathlib import Path

from engine.data_files import SAMPLE_DATASET

WORDS = sorted({w for line in SAMPLE_DATASET.read_text().splitlines() for w in json.loads(line)["output"].split()}
               | {"the", "model", "data", "train", "value", "result", "system", "answer", "because", "which"})


def make_dataset(path: Path, n: int, seed: int = 0) -> Path:
    """Alpaca records whose lengths follow a log-normal: ~30 to 512 tokens, median ~120."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            total = int(min(512, max(30, rng.lognormvariate(4.8, 0.6))))  # tokens, median e^4.8 ~ 121
            words = max(4, int(total / 1.6))
            prompt = " ".join(rng.choice(WORDS) for _ in range(max(2, words // 4)))
            answer = " ".join(rng.choice(WORDS) for _ in range(words - words // 4))
            fh.write(json.dumps({"instruction": prompt, "input": "", "output": answer}) + "\n")
    return path


def make_model(folder: Path, hidden: int, layers: int, seed: int = 0) -> Path:
    """A random Llama with the built-in tokenizer, saved with save_pretrained."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from engine.builtin_model import ASSETS, CHAT_TEMPLATE

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(ASSETS / "tiny_tokenizer.json"), bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    heads = max(2, hidden // 64)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=int(hidden * 8 / 3) // 64 * 64,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False, initializer_range=0.05)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def lora_config(model: str, steps: int, batch: int, seq: int, padding: str) -> dict:
    return {"method": "lora", "base_model": model,
            "method_specific": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
            "training": {"max_steps": steps, "batch_size": batch, "learning_rate": 2e-4, "max_seq_length": seq,
                         "padding_reduction": padding, "seed": 0, "lr_scheduler": "constant"},
            "hardware": {"mixed_precision": "no", "device": "cpu"},
            "monitoring": {"logging_steps": 1, "eval_steps": 0, "save_steps": 0, "system_interval_s": 2.0},
            "data": {"eval_split": 0.0}}
