"""One timed completion (first-token latency, tokens/s), optionally streamed as text-so-far callbacks: what the
serving process reports per answer and what the deployment figures measure after training."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from engine.data import prompt_ids
from methods.contract import MethodImplementation

PARTIAL_EVERY_S = 0.05  # a streamed answer's partial events come at most this often
Partial = Callable[[str, int], None]  # (the text generated so far, its token count)


class Timer:
    """A generate() streamer recording when the first new token came (put() gets the prompt first), and passing
    the text so far to `on_text` (at most every PARTIAL_EVERY_S seconds, and at the end)."""

    def __init__(self, tokenizer: Any = None, on_text: Partial | None = None,
                 every_s: float = PARTIAL_EVERY_S) -> None:
        self.puts = 0
        self.first: float | None = None
        self.last: float | None = None
        self.tokenizer, self.on_text = tokenizer, on_text
        self.new: list[int] = []
        self.sent_at, self.every_s = 0.0, every_s
        self.sent = 0

    def put(self, value: Any) -> None:
        self.puts += 1
        if self.puts == 2:
            self.first = time.perf_counter()
        self.last = time.perf_counter()
        if self.puts >= 2 and self.on_text is not None:
            self.new.extend(int(t) for t in value.reshape(-1).tolist())
            if self.last - self.sent_at >= self.every_s:
                self._send()

    def _send(self) -> None:
        if self.on_text is None or self.sent == len(self.new):
            return
        self.sent, self.sent_at = len(self.new), time.perf_counter()
        self.on_text(self.tokenizer.decode(self.new, skip_special_tokens=True), len(self.new))

    def end(self) -> None:
        self._send()


def complete(model: Any, impl: MethodImplementation | None, tokenizer: Any, runtime: Any, text: str,
             max_new_tokens: int = 32, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
             on_text: Partial | None = None, partial_every_s: float = PARTIAL_EVERY_S) -> dict[str, Any]:
    """One completion of `text` (greedy at temperature 0, as engine.generate.greedy; else seeded sampling), timed;
    `on_text` gets the text so far while it is generated."""
    ids = prompt_ids(tokenizer, text)
    input_ids = torch.tensor([ids], device=runtime.device)
    mask = torch.ones_like(input_ids)
    timer = Timer(tokenizer, on_text, partial_every_s)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id, streamer=timer)
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
    torch.manual_seed(seed)
    model.eval()
    started = time.perf_counter()
    with torch.no_grad():
        if impl is not None:
            out = impl.generate(model, input_ids, mask, **kwargs)
        else:
            out = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
    ended = time.perf_counter()
    new = out[0, input_ids.shape[1]:]
    new_tokens = int(new.shape[0])
    first = timer.first if timer.first is not None else ended
    rest = max(ended - first, 1e-9)
    tokens_per_s = (new_tokens - 1) / rest if new_tokens > 1 else new_tokens / max(ended - started, 1e-9)
    return {"text": tokenizer.decode(new, skip_special_tokens=True), "new_tokens": new_tokens,
            "first_token_s": first - started, "tokens_per_s": tokens_per_s, "total_s": ended - started}


