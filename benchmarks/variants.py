"""One training-throughput variant per process: `python benchmarks/variants.py VARIANT MODEL DATA STEPS BATCH SEQ`.

Prints one JSON line {"tokens": real tokens after the first step, "seconds": their wall time, "padded": ...}.
Variants: bare (plain PyTorch loop, length-grouped batches), trainer (Trainer + PEFT defaults),
trainer_grouped (train_sampling_strategy="group_by_length").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _prepared(model_dir: str, data: str, seq: int):
    from benchmarks.workload import lora_config
    from engine.data import prepare
    from engine.models import load_tokenizer
    from methods.validation import validate_config

    cfg = validate_config(lora_config(model_dir, 1, 1, seq, "off")).config
    tokenizer = load_tokenizer(cfg)
    return cfg, tokenizer, prepare(tokenizer, data, cfg.data, seq, 0).train


def _peft_model(model_dir: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                            task_type="CAUSAL_LM"))


def bare(model_dir: str, data: str, steps: int, batch: int, seq: int) -> dict:
    import torch

    from engine.batching import batch_order, make_batch

    _, tokenizer, train = _prepared(model_dir, data, seq)
    model = _peft_model(model_dir)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    order = batch_order(train, batch, 0, 0, "group_by_length")
    tokens, padded, start = 0, 0, None
    for step in range(steps):
        b = make_batch(train, order[step % len(order)], "padded", tokenizer.pad_token_id)
        loss = model(**b, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == 0:
            start = time.perf_counter()
        else:
            tokens += int(b["attention_mask"].sum())
            padded += b["input_ids"].numel()
    return {"tokens": tokens, "seconds": time.perf_counter() - start, "padded": padded}


def trainer(model_dir: str, data: str, steps: int, batch: int, seq: int, grouped: bool = False) -> dict:
    import tempfile

    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    _, tokenizer, train = _prepared(model_dir, data, seq)
    ds = Dataset.from_dict({"input_ids": [e.input_ids for e in train], "labels": [e.labels for e in train],
                            "attention_mask": [[1] * len(e.input_ids) for e in train]})
    batches: list[tuple[int, int]] = []  # (real, padded) tokens of each batch, in the order steps use them
    clock: dict[str, float] = {}
    base_collate = DataCollatorForSeq2Seq(tokenizer, padding="longest")

    def collate(features):
        out = base_collate(features)
        batches.append((int(out["attention_mask"].sum()), out["input_ids"].numel()))
        return out

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 1:
                clock["start"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=2e-4,
                                 report_to=[], logging_strategy="no", save_strategy="no", seed=0,
                                 dataloader_num_workers=0, use_cpu=True,
                                 train_sampling_strategy="group_by_length" if grouped else "random")
        t = Trainer(model=_peft_model(model_dir), args=args, train_dataset=ds, data_collator=collate,
                    callbacks=[Clock()])
        t.train()
        seconds = time.perf_counter() - clock["start"]
    timed = batches[1:steps]  # steps 2..N (a prefetched extra batch is not counted)
    return {"tokens": sum(b[0] for b in timed), "seconds": seconds, "padded": sum(b[1] for b in timed)}


if __name__ == "__main__":
    name, model_dir, data, steps, batch, seq = sys.argv[1:7]
    args = (model_dir, data, int(steps), int(batch), int(seq))
    result = {"bare": lambda: bare(*args), "trainer": lambda: trainer(*args),
              "trainer_grouped": lambda: trainer(*args, grouped=True)}[name]()
    print(json.dumps(result))
