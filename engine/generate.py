"""Greedy completions from a trained run (any method), optionally beside the base model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.data import ALPACA_PROMPT, prompt_ids, render_chat
from engine.errors import EngineError
from engine.models import load_tokenizer, resolve_runtime
from engine.run_store import RunDir
from engine.runner import EngineContext, load_run_config, place
from methods.catalogue import get_catalogue
from methods.contract import MethodImplementation


def trained_weights(run: RunDir) -> Path:
    if (run.weights_dir).is_dir():
        return run.weights_dir
    checkpoint = run.latest_checkpoint()
    if checkpoint is not None:
        return checkpoint / "weights"
    raise EngineError("run", f"{run.path}: no trained weights yet (no weights/ and no checkpoint)",
                      "wait for the run to save a checkpoint, or train it to the end")


def format_prompt(tokenizer: Any, prompt: str, data_format: str) -> str:
    if data_format == "alpaca":
        return ALPACA_PROMPT.format(instruction=prompt, input_block="")
    if data_format in ("chat", "sharegpt"):
        return render_chat(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True)
    return prompt


def _base(cfg: Any, runtime: Any, impl: MethodImplementation) -> tuple[Any, EngineContext]:
    ctx = EngineContext(cfg, runtime, lambda level, msg: None)
    model = impl.load_model(cfg, ctx)
    place(model, impl, runtime)
    return model, ctx


def greedy(model: Any, tokenizer: Any, text: str, max_new_tokens: int, impl: MethodImplementation | None,
           runtime: Any) -> str:
    """Greedy completion of `text`: through the method's generate hook for its trained model (impl), else plainly."""
    ids = prompt_ids(tokenizer, text)  # as in training: exactly one BOS, even when the chat template renders it
    input_ids = torch.tensor([ids], device=runtime.device)
    enc = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id)
    model.eval()
    with torch.no_grad():
        if impl is not None:
            out = impl.generate(model, enc["input_ids"], enc["attention_mask"], **kwargs)
        else:
            out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **kwargs)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def load_trained_model(run: RunDir, before_weights: Any = None) -> tuple[Any, Any, MethodImplementation, Any]:
    """(trained model, tokenizer, implementation, runtime) of a run, loaded as its method reloads it;
    `before_weights(base, tokenizer, runtime)` runs on the plain base model before the trained weights go in."""
    cfg = load_run_config(run)
    runtime = resolve_runtime(cfg)
    impl = get_catalogue().get(cfg.method_name).implementation()
    tokenizer = load_tokenizer(cfg)
    base, ctx = _base(cfg, runtime, impl)
    if before_weights is not None:
        before_weights(base, tokenizer, runtime)
    model = impl.load_trained(base, trained_weights(run), ctx)
    place(model, impl, runtime)
    return model, tokenizer, impl, runtime


def generate(run: RunDir, prompt: str, max_new_tokens: int = 32, compare_base: bool = False) -> dict[str, Any]:
    data_format = (run.summary() or {}).get("data_format", "alpaca")
    answers: dict[str, Any] = {"base_completion": None}

    def ask_base(base: Any, tokenizer: Any, runtime: Any) -> None:
        text = format_prompt(tokenizer, prompt, data_format)
        answers["base_completion"] = greedy(base, tokenizer, text, max_new_tokens, None, runtime)

    model, tokenizer, impl, runtime = load_trained_model(run, ask_base if compare_base else None)
    text = format_prompt(tokenizer, prompt, data_format)
    completion = greedy(model, tokenizer, text, max_new_tokens, impl, runtime)
    return {"prompt": prompt, "completion": completion, "base_completion": answers["base_completion"]}
