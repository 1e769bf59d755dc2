"""`python -m engine.evaluate RUN_DIR --tasks T...`: multiple-choice accuracy by log-likelihood of a run's trained
model (and its base with --base), on local task files or lm-eval tasks; each result is saved as RUN/eval/<task>.json,
a limited one (--limit N, fewer questions than the task has) as RUN/eval/<task>@limitN.json: it never replaces the
full result that `lf-tui report` judges.

Scoring follows lm-eval's multiple-choice tasks: each choice continues the context (joined by a space unless the
context ends in whitespace); the context's trailing whitespace moves into the continuation and the whole text is
tokenised and split after the context's tokens (lm-eval's `_encode_pair`); a choice's log-likelihood is the sum of
its tokens' log-probabilities given the context and the tokens before them. acc picks the highest log-likelihood;
acc_norm divides it by the choice's length in characters first (lm-eval's acc_norm), which removes the bias towards
short choices.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from engine import lm_eval_tasks
from engine.data import prompt_ids
from engine.errors import EngineError
from engine.eval_tasks import Question, Task, read_task, task_file
from engine.run_store import RunDir

NORMALISATION = ("acc: the choice with the highest log-likelihood (summed over its tokens); acc_norm: the highest "
                 "log-likelihood per character of the choice (length-normalised, as lm-eval's acc_norm)")
BATCH_ROWS = 16  # sequences per forward pass


def continuation(context: str, choice: str) -> str:
    return choice if not context or context[-1].isspace() else " " + choice


def split_pair(context: str, text: str) -> tuple[str, str]:
    """(context, continuation) with the context's trailing whitespace moved to the continuation, as lm-eval does (a
    word's leading space belongs to its token)."""
    kept = context.rstrip()
    return kept, context[len(kept):] + text


def encode(tokenizer: Any, context: str, choice: str) -> tuple[list[int], list[int]]:
    """(context ids, choice ids) as lm-eval's `_encode_pair`: the context's trailing whitespace starts the choice, the
    whole text is tokenised and split after the context's own tokens; the context starts with the BOS training adds
    (an empty context is the BOS alone, else EOS, so the first choice token has one)."""
    context, text = split_pair(context, continuation(context, choice))
    if context:
        ctx, whole = prompt_ids(tokenizer, context), prompt_ids(tokenizer, context + text)
        cont = whole[len(ctx):]
        if cont:
            return ctx, cont
    first = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    cont = tokenizer(text, add_special_tokens=False)["input_ids"]
    return (prompt_ids(tokenizer, context) if context else [first]), cont


def max_positions(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def loglikelihoods(model: Any, pairs: list[tuple[list[int], list[int]]], runtime: Any, pad_id: int) -> list[float]:
    """Summed log-probability of each continuation given its context (contexts cut from the left to fit)."""
    limit = max_positions(model)
    out: list[float] = []
    for start in range(0, len(pairs), BATCH_ROWS):
        rows = []
        for ctx, cont in pairs[start:start + BATCH_ROWS]:
            row = ctx + cont
            if limit is not None and len(row) - 1 > limit:
                row = row[len(row) - 1 - limit:]
            rows.append((row, len(cont)))
        width = max(len(r) - 1 for r, _ in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row, _) in enumerate(rows):
            ids[i, :len(row) - 1] = torch.tensor(row[:-1])
            mask[i, :len(row) - 1] = 1
        dtype = runtime.autocast_dtype
        autocast = (torch.autocast(device_type=runtime.device.type, dtype=dtype) if dtype is not None
                    else torch.autocast(device_type="cpu", enabled=False))
        with torch.no_grad(), autocast:
            logits = model(input_ids=ids.to(runtime.device), attention_mask=mask.to(runtime.device),
                           use_cache=False).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for i, (row, n_cont) in enumerate(rows):
            first = len(row) - 1 - n_cont  # the position that predicts the continuation's first token
            targets = torch.tensor(row[-n_cont:], device=logprobs.device)
            positions = torch.arange(first, first + n_cont, device=logprobs.device)
            out.append(float(logprobs[i, positions, targets].sum()))
    return out


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])


def score(model: Any, tokenizer: Any, questions: list[Question], runtime: Any) -> dict[str, Any]:
    """acc and acc_norm with their counts, and each question's log-likelihoods and picks."""
    model.eval()
    pairs = [encode(tokenizer, q.context, c) for q in questions for c in q.choices]
    lls = loglikelihoods(model, pairs, runtime, tokenizer.pad_token_id)
    per_question, at = [], 0
    for q in questions:
        ll = lls[at:at + len(q.choices)]
        at += len(q.choices)
        norm = [v / len(c) for v, c in zip(ll, q.choices)]
        per_question.append({"where": q.where, "answer": q.answer, "loglik": [round(v, 5) for v in ll],
                             "pred": _argmax(ll), "pred_norm": _argmax(norm)})
    n = len(questions)
    correct = sum(p["pred"] == p["answer"] for p in per_question)
    correct_norm = sum(p["pred_norm"] == p["answer"] for p in per_question)
    return {"acc": correct / n, "correct": correct, "acc_norm": correct_norm / n, "correct_norm": correct_norm,
            "count": n, "per_question": per_question}


def resolve_tasks(values: list[str]) -> list[Task | str]:
    """Task files read (every line checked before a model loads); lm-eval names kept (lm_eval_tasks resolves them)."""
    out: list[Task | str] = []
    for value in values:
        path = task_file(value)
        out.append(read_task(path) if path is not None else value)
    return out


def limited(task: Task | str, limit: int | None) -> bool:
    """Whether `limit` leaves out some of the task's questions (an lm-eval task: any limit)."""
    return limit is not None and (not isinstance(task, Task) or limit < len(task.questions))


def _measure(model: Any, tokenizer: Any, tasks: list[Task | str], runtime: Any, limit: int | None,
             named: tuple[Any, dict[str, list[Any]]]) -> list[Any]:
    manager, built = named
    return [score(model, tokenizer, t.questions[:limit] if limit else t.questions, runtime) if isinstance(t, Task)
            else lm_eval_tasks.score(model, tokenizer, t, built[t], manager, BATCH_ROWS, limit) for t in tasks]


def result_path(run: RunDir, task: str, limit: int | None = None) -> Path:
    """RUN/eval/<task>.json; a limited evaluation's RUN/eval/<task>@limit<N>.json."""
    return run.path / "eval" / (f"{task}@limit{limit}.json" if limit is not None else f"{task}.json")


def save(run: RunDir, entry: dict[str, Any]) -> Path:
    """RUN/eval/<task>.json (a limited entry: <task>@limit<N>.json, so the full result stays), keeping a model
    measured earlier (e.g. the base) that this evaluation did not redo."""
    import json

    from lf_common.files import write_json

    path = result_path(run, entry["task"], entry["limit"] if entry.get("limited") else None)
    path.parent.mkdir(exist_ok=True)
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    if isinstance(previous, dict) and previous.get("source") == entry["source"]:
        entry["models"] = {**previous.get("models", {}), **entry["models"]}
    write_json(path, entry)
    return path


def evaluate(run_dir: Path, values: list[str], base: bool = False, limit: int | None = None) -> dict[str, Any]:
    from engine.generate import load_trained_model, trained_weights

    run = RunDir(run_dir)
    refusal = run.eval_refusal()
    if refusal is not None:
        raise EngineError("store", refusal)
    tasks = resolve_tasks(values)
    names = [t for t in tasks if isinstance(t, str)]
    if names:
        lm_eval_tasks.offline_unless_reachable()  # before the Hugging Face libraries load: no half-minute retries
    named = lm_eval_tasks.resolve(names)  # unknown or offline: said before any model loads
    weights = trained_weights(run)
    measured: dict[str, list[Any]] = {}

    def on_base(model: Any, tokenizer: Any, runtime: Any) -> None:
        measured["base"] = _measure(model, tokenizer, tasks, runtime, limit, named)

    t = time.perf_counter()
    model, tokenizer, _impl, runtime = load_trained_model(run, on_base if base else None)
    measured["trained"] = _measure(model, tokenizer, tasks, runtime, limit, named)
    cfg = run.config() or {}
    results = []
    for i, task in enumerate(tasks):
        name, source = (task.name, task.source) if isinstance(task, Task) else (task, "lm-eval")
        entry = {"task": name, "source": source, "run_id": run.run_id, "method": cfg.get("method_name"),
                 "base_model": cfg.get("base_model"), "weights": str(weights.relative_to(run.path)),
                 "normalisation": NORMALISATION if isinstance(task, Task) else "lm-eval's own metrics",
                 "limit": limit, "limited": limited(task, limit), "measured_at": time.time(),
                 "models": {key: {**scores[i], "measured_at": time.time()} for key, scores in measured.items()}}
        entry["path"] = str(save(run, dict(entry)))
        results.append(entry)
    return {"run_id": run.run_id, "device": str(runtime.device), "seconds": round(time.perf_counter() - t, 2),
            "results": results}


def main(argv: list[str] | None = None) -> int:
    from engine.eval_process import json_result

    parser = argparse.ArgumentParser(prog="python -m engine.evaluate", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--tasks", nargs="+", required=True)
    parser.add_argument("--base", action="store_true", help="also evaluate the base model")
    parser.add_argument("--limit", type=int, help="at most this many questions per task")
    args = parser.parse_args(argv)
    return json_result(lambda: evaluate(args.run_dir, args.tasks, args.base, args.limit),
                       "evaluation holds one model and a batch of its logits: use a smaller batch or a GPU")


if __name__ == "__main__":
    sys.exit(main())
