"""`python -m engine.preview`: a dataset as training tokenises it (template, trained and masked tokens, truncation).

The examples come from `engine.data.prepare`, the function the runner's data step calls (through its cache), so
the labels shown are the labels trained; the records are tokenised once more, with the same `tokenize_sample`,
only to name each example's record, to measure lengths before truncation and to show the dropped ones.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

from engine.data import IGNORE, Example, load_samples, prepare, tokenize_sample
from engine.data_files import SAMPLE_DATASET
from engine.data_formats import TRAIN_KEY, Sample
from engine.errors import EngineError

HISTOGRAM_BINS = 10
WINDOW = 6  # tokens of context decoded before each token (a tokenizer may strip the first token's leading space)
PACKING_NOTE = ("packing: a batch's examples are concatenated into one row with positions restarting per example; "
                "the first token of each predicts nothing, so the trained tokens are the ones shown")


def trained_flags(example: Example) -> list[bool]:
    """Which tokens carry a loss: labels not ignored after the causal shift (the first token is never a target)."""
    return [i > 0 and label != IGNORE for i, label in enumerate(example.labels)]


def token_pieces(tokenizer: Any, ids: list[int]) -> list[str]:
    """The text of each token, so that the pieces join to the decoded text; a token ending inside a multi-byte
    character gets "" and the character goes to the token that completes it."""
    def decode(part: list[int]) -> str:
        return str(tokenizer.decode(part, skip_special_tokens=False, clean_up_tokenization_spaces=False))

    pieces: list[str] = []
    start = read = 0  # decoding window start; tokens before `read` have their text
    for i in range(len(ids)):
        full = decode(ids[start:i + 1])
        if full.endswith("\ufffd") and i + 1 < len(ids):
            pieces.append("")  # an incomplete character: wait for the next token
            continue
        before = decode(ids[start:read])
        pieces.append(full[len(before):] if full.startswith(before) else decode(ids[read:i + 1]))
        read = i + 1
        start = max(start, read - WINDOW)
    return pieces


def histogram(lengths: list[int], bins: int = HISTOGRAM_BINS) -> list[dict[str, int]]:
    """Counts of token lengths in up to `bins` equal integer ranges from the shortest to the longest."""
    if not lengths:
        return []
    lo, hi = min(lengths), max(lengths)
    width = max(1, -(-(hi - lo + 1) // bins))
    return [{"from": a, "to": a + width - 1, "count": sum(a <= n < a + width for n in lengths)}
            for a in range(lo, hi + 1, width)]


def _flagged(samples: list[Sample]) -> bool:
    """Whether any message carries its own train / weight flag (axolotl's, OpenAI's), overriding its role."""
    return any(TRAIN_KEY in m for s in samples for m in (s.messages or []))


def template_name(tokenizer: Any, fmt: str, samples: list[Sample] | None = None) -> str:
    """How the records become text and which part trains, in words."""
    if fmt == "input_output":
        return "the segments as written (label true trains; no template, no EOS added)"
    if fmt in ("chat", "sharegpt"):
        trained = ("per-message train / weight flags decide what trains, else assistant turns train"
                   if _flagged(samples or []) else "assistant turns train")
        if getattr(tokenizer, "chat_template", None):
            return f"the tokenizer's chat template ({trained})"
        return f"a plain <|role|> layout (the tokenizer has no chat template; {trained})"
    if fmt == "alpaca":
        return "the alpaca prompt (### Instruction, ### Input, ### Response; the output trains)"
    return {"prompt_completion": "prompt then completion (the completion trains)",
            "text": "the raw text (every token trains)"}.get(fmt, fmt)


def _same(a: Example, b: Example) -> bool:
    return a.input_ids == b.input_ids and a.labels == b.labels


def _reason(sample: Sample) -> str:
    return "an empty response" if not sample.has_response else "no trained token left after truncation"


def _match(tokenizer: Any, samples: list[Sample], prepared: Any, cfg: Any,
           split_from_train: bool) -> list[tuple[Sample, int, str, Example]]:
    """(sample, untruncated length, split, the example as trained) for every record, in file order."""
    max_len = cfg.training.max_seq_length
    train, held = deque(prepared.train), deque(prepared.eval if split_from_train else [])
    rows = []
    for sample in samples:
        full = tokenize_sample(tokenizer, sample, cfg.data.train_on_prompt)
        cut = Example(full.input_ids[:max_len], full.labels[:max_len])
        if train and _same(train[0], cut):
            rows.append((sample, len(full.input_ids), "train", train.popleft()))
        elif held and _same(held[0], cut):
            rows.append((sample, len(full.input_ids), "eval", held.popleft()))
        else:
            rows.append((sample, len(full.input_ids), "dropped", Example(cut.input_ids, [IGNORE] * len(cut.labels))))
    if train or held:
        raise EngineError("internal", f"the preview lost track of {len(train) + len(held)} prepared example(s)",
                          "this looks like a bug")
    return rows


def _example(tokenizer: Any, sample: Sample, length: int, split: str, ex: Example) -> dict[str, Any]:
    flags = trained_flags(ex)
    row: dict[str, Any] = {"where": sample.where, "split": split, "length": length, "kept_tokens": len(ex.input_ids),
                           "truncated": length > len(ex.input_ids), "trained_tokens": sum(flags),
                           "tokens": [{"id": t, "text": s, "trained": f}
                                      for t, s, f in zip(ex.input_ids, token_pieces(tokenizer, ex.input_ids), flags)]}
    if split == "dropped":
        row["reason"] = _reason(sample)
    return row


def preview(cfg: Any, dataset: str | None, n: int, eval_dataset: str | None = None) -> dict[str, Any]:
    """The first `n` examples as trained, the length histogram and the counts; a dataset with nothing to train
    is refused with prepare's DataError (the file, the causes and the fix)."""
    from engine.batching import pick_padding_reduction
    from engine.models import load_tokenizer, resolve_runtime

    source = dataset or str(SAMPLE_DATASET)
    tokenizer = load_tokenizer(cfg)
    max_len = cfg.training.max_seq_length
    prepared = prepare(tokenizer, source, cfg.data, max_len, cfg.training.seed, eval_dataset)
    fmt, samples = load_samples(source, cfg.data)
    split_from_train = not (eval_dataset or cfg.data.eval_path)
    rows = _match(tokenizer, samples, prepared, cfg, split_from_train)
    try:
        device = resolve_runtime(cfg).device.type
    except EngineError:
        device = "cpu"
    mode = pick_padding_reduction(cfg.training.padding_reduction, device)
    lengths = [length for _, length, _, _ in rows]
    dropped = [(s, split) for s, _, split, _ in rows if split == "dropped"]
    return {
        "dataset": source, "format": fmt, "template": template_name(tokenizer, fmt, samples), "base_model": cfg.base_model,
        "max_seq_length": max_len, "train_on_prompt": cfg.data.train_on_prompt, "padding_reduction": mode,
        "packing_note": PACKING_NOTE if mode == "packing" else "",
        "records": len(samples), "train_examples": len(prepared.train), "eval_examples": len(prepared.eval),
        "eval_source": eval_dataset or cfg.data.eval_path,
        "longer_than_max": sum(length > max_len for length in lengths),
        "no_trained_tokens": {"empty_response": sum(not s.has_response for s, _ in dropped),
                              "truncated_away": sum(s.has_response for s, _ in dropped)},
        "lengths": {"min": min(lengths), "max": max(lengths), "mean": round(sum(lengths) / len(lengths), 1),
                    "histogram": histogram(lengths)},
        "notes": prepared.notes,
        "examples": [_example(tokenizer, *row) for row in rows[:max(0, n)]],
    }


def main(argv: list[str] | None = None) -> int:
    """Reads {"config": resolved config, "dataset", "eval_dataset", "n"} on stdin; prints one JSON line."""
    from engine.eval_process import json_result, load_config, read_request

    def compute() -> dict[str, Any]:
        request = read_request()
        cfg = load_config(request.get("config"))
        return preview(cfg, request.get("dataset"), int(request.get("n", 3)), request.get("eval_dataset"))

    return json_result(compute, "the preview holds the whole tokenised dataset in memory: preview a smaller file")


if __name__ == "__main__":
    sys.exit(main())
