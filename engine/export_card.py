"""The model card (README.md) of an export: method and settings, base, data, training or fusion, how to load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KINDS = {"peft": "PEFT adapter", "model": "model (every weight)", "lf-tui": "adapter, in lf-tui's format"}


def _figure(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


# A stock PeftModel.generate drops a prefix-tuning adapter's prefix with transformers 5 (an empty cache replaces the
# prefix cache PEFT passes), answering as the base model; the card's code gives the base model the prefix as its
# cache, as lf-tui's own generate does (methods/prefix_tuning/implementation.py `generate`).
# The prompt's ids come from the exported tokenizer itself, which adds a BOS exactly when training did
# (engine.tokenizer_bos): none on GPT-2-like bases, whose BOS is their EOS.
PREFIX_GENERATE = """import torch


def prompt_ids(text):
    \"\"\"The prompt's token ids as training saw them (the tokenizer adds the BOS training added, if any).\"\"\"
    plain = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None and plain[:1] == [tokenizer.bos_token_id]:
        return plain  # the text starts with it already (a chat template that renders it): one BOS, not two
    return tokenizer(text)["input_ids"]


def generate(text, max_new_tokens=32):
    \"\"\"Greedy answer to `text` (the prompt as the training data was laid out), through the trained prefix.\"\"\"
    ids = prompt_ids(text)
    input_ids = torch.tensor([ids])
    n_virtual = model.peft_config[model.active_adapter].num_virtual_tokens
    mask = torch.ones(1, n_virtual + len(ids), dtype=torch.long)  # the prefix, then the prompt
    model.eval()
    with torch.no_grad():
        out = model.get_base_model().generate(
            input_ids=input_ids, attention_mask=mask, cache=model.get_prompt(batch_size=1),
            max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
```
"""
PREFIX_NOTE = ("\nGenerate with `generate(text)` above, not `model.generate`: with transformers 5, PEFT's own "
               "`PeftModel.generate` drops the prefix and answers as the base model (the weights are right; only "
               "that call ignores them). The code hands the base model the trained prefix as its cache, as lf-tui "
               "generates; `model(...)` (a forward, e.g. for log-likelihoods) uses the prefix as it is.\n")


def loading(manifest: dict[str, Any], cfg: Any, out: Path, refusal: str) -> str:
    """How to load the exported folder, for its kind of weights."""
    from engine.models import model_source

    base = model_source(cfg.base_model)  # a built-in model: the folder lf-tui built it in
    head = "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
    tok = f'tokenizer = AutoTokenizer.from_pretrained("{out}")\n```\n'
    if manifest["weights"] == "model":
        return head + f'model = AutoModelForCausalLM.from_pretrained("{out}")\n' + tok
    why = f"\nThis method cannot be merged into the base weights: {refusal}.\n" if refusal else ""
    if manifest["weights"] == "peft":
        note = ("\nThe adapter was trained on a 4-bit base: loading the base with the run's BitsAndBytesConfig "
                "(`lf_tui_quantisation.json` here, for runs that recorded it: its quant type, double quantisation "
                "and the compute dtype as resolved where it trained) reproduces training; a full-precision base "
                "gives a little better outputs (no quantisation error).\n" if cfg.method_name == "qlora" else "")
        code = (head.replace("\n", "\nfrom peft import PeftModel\n", 1)
                + f'base = AutoModelForCausalLM.from_pretrained("{base}")\n'
                f'model = PeftModel.from_pretrained(base, "{out}")\n' + tok)
        if cfg.method_name == "prefix_tuning":
            return code.removesuffix("```\n") + PREFIX_GENERATE + PREFIX_NOTE + why
        return code + note + why
    return (f"{why}These weights are in lf-tui's own format: loading them needs lf-tui's code (the method's "
            f"`load_trained` in `methods/{cfg.method_name}/implementation.py`), from lf-tui's folder:\n\n"
            + head + f"from methods.{cfg.method_name}.implementation import load_trained\n\n"
            f'model = load_trained(AutoModelForCausalLM.from_pretrained("{base}"), "{out}")\n' + tok
            + "\n(`lf-tui generate --run RUN --prompt ...` generates from the run itself.)\n")


def _word(value: Any) -> str:
    """A setting as the config writes it: booleans true/false, not Python's True/False."""
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def _training_lines(cfg: Any, summary: dict[str, Any]) -> list[str]:
    t, hw = cfg.training, cfg.hardware
    return [
        "## Training", "",
        f"- {f'{t.max_steps} steps' if t.max_steps > 0 else f'{t.epochs} epochs'}, batch {t.batch_size} x "
        f"{t.gradient_accumulation_steps} accumulation, max_seq_length {t.max_seq_length}",
        f"- learning rate {t.learning_rate:g} ({t.lr_scheduler}, {t.warmup_steps} warm-up steps), optimizer "
        f"{t.optimizer}, weight decay {t.weight_decay:g}, seed {t.seed}",
        f"- mixed precision {hw.mixed_precision}, gradient checkpointing {_word(hw.gradient_checkpointing)}", "",
        "## Results", "",
        f"- steps: {summary.get('total_steps', '-')}, training time {_figure(summary.get('training_time_s'))} s",
        f"- final loss {_figure(summary.get('final_loss'))}, best loss {_figure(summary.get('best_loss'))}, "
        f"best eval loss {_figure(summary.get('best_eval_loss'))}",
        f"- convergence: {(summary.get('convergence') or {}).get('verdict', '-')}", ""]


def _fusion_lines(fusion: dict[str, Any]) -> list[str]:
    """A fused run (lf-tui fuse): its parents with their weights and the recipe, in place of training figures."""
    parents = [f"- `{p.get('run_id')}`: weight {_figure(p.get('weight'))}, rank {p.get('rank', '-')}, its weights "
               f"from {p.get('weights_from', '-')}" for p in fusion.get("parents") or []]
    density = fusion.get("density")
    return [
        "## Fusion", "",
        f"Not trained: a fusion of {len(parents)} LoRA runs' adapters by PEFT's add_weighted_adapter "
        f"(combination {fusion.get('combination', '-')}, density {_figure(density) if density is not None else 'none'}, "
        f"seed {fusion.get('seed', '-')}) into one rank-{fusion.get('rank', '-')} adapter.", "",
        "Parents:", "", *parents, ""]


def model_card(run: Any, cfg: Any, manifest: dict[str, Any], out: Path, refusal: str) -> str:
    """README.md: method and settings, base model, data, training config (a fused run: its parents and recipe), final
    metrics and how to load."""
    meta, summary = run.meta(), run.summary() or {}
    fusion = meta.get("fusion") or summary.get("fusion")
    fusion = fusion if isinstance(fusion, dict) else None
    hub_base = not cfg.base_model.startswith("builtin:") and not Path(cfg.base_model).exists()
    front = ["---", f"base_model: {cfg.base_model}"] if hub_base else ["---"]
    front += [f"library_name: {'peft' if manifest['weights'] == 'peft' else 'transformers'}",
              f"tags: [lf-tui, {cfg.method_name}{', fusion' if fusion else ''}]", "---", ""]
    what = (f"the merged model ({manifest['dtype']}): the {'fused' if fusion else 'trained'} weights folded into the "
            "base's" if manifest["merged"] else f"the {'fused' if fusion else 'trained'} {KINDS[manifest['weights']]} "
            "as saved (not merged)")
    settings = "\n".join(f"- `{k}`: `{json.dumps(v)}`" for k, v in cfg.method_specific.model_dump(mode="json").items())
    heading = (f"# fusion of {len(fusion.get('parents') or [])} {cfg.method_name} runs on {cfg.base_model}" if fusion
               else f"# {cfg.method_name} fine-tune of {cfg.base_model}")
    data = [f"- dataset: `{meta.get('dataset') or 'the bundled sample dataset'}`" + (" (the parents')" if fusion else "")]
    if not fusion:
        data.append(f"- eval dataset: `{meta.get('eval_dataset') or f'a {cfg.data.eval_split:g} split of the dataset'}`")
    return "\n".join(front + [
        heading, "",
        f"Exported by lf-tui from run `{run.run_id}` ({summary.get('status', 'unfinished')}): {what}; weights from "
        f"{manifest['weights_from']}.", "",
        *([f"Merged {manifest['merge_path']}: {manifest['merge_path_reason']}.", ""] if manifest.get("merge_path") else []),
        f"## Method: {cfg.method_name}" + (" (the fused adapter)" if fusion else ""), "", settings, "",
        "## Base model", "", f"`{cfg.base_model}`", "",
        "## Data", "", *data, f"- format: {summary.get('data_format', cfg.data.format)}", "",
        *(_fusion_lines(fusion) if fusion else _training_lines(cfg, summary)),
        "## How to load", "", loading(manifest, cfg, out, refusal)])
