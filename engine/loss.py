"""Token-weighted causal-LM loss: summed over real target tokens, so accumulation equals one big batch.

Two ways to get the summed loss of a model on a batch (`model_loss_sum`):

- the plain path: the model returns its logits (batch x seq x vocab) and `summed_loss` gathers the target rows;
- the chunked path: the output head is bypassed during the model's forward (it returns its input, the final hidden
  states), then the head runs on the target rows only, a chunk of rows at a time, each chunk's logits upcast to fp32
  for its cross-entropy. With gradients on, each chunk's backward through the head runs right away (the gradient of
  the chunk's summed loss with respect to its hidden rows and to the head's trainable parameters, accumulated), and
  the chunk's logits are freed before the next: the logits held at once are one chunk (`CHUNK_BYTES` of fp32), never
  batch x seq x vocab, and no logits are recomputed. The model's backward then scales those gradients by the loss's
  incoming gradient (the 1 / target tokens of the step, times the fp16 loss scale). A trained head (full
  fine-tuning, modules_to_save) costs one gradient buffer of its weight's size from the forward on.

The chunked path is exact against the plain one (the same head matmul under the same autocast, fp32 cross-entropy;
only the summation order differs) and is used whenever a one-off probe on the model says it reproduces the model's
logits: the model calls its output head exactly once, on hidden states as long as the input, and any logits
post-processing is one we reproduce (Gemma 2's final_logit_softcapping). Anything else takes the plain path.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any, Callable

import torch

from engine.data import IGNORE

CHUNK_BYTES = 64 * 2**20  # fp32 logits per chunk
PROBE_TOKENS = 8  # tokens of the first batch's first row the one-off probe runs on
_SUPPORTED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()  # model -> probe result


def target_tokens(batch: dict[str, Any]) -> int:
    """Tokens that carry a loss: labels that are not ignored after the causal shift (next-token targets)."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def summed_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of the next-token cross-entropies over the target tokens (fp32, whatever the logits' dtype).

    Only the rows of target positions are gathered and upcast, so a masked prompt costs no fp32 logits.
    """
    shift_labels = labels[:, 1:].to(logits.device)
    mask = shift_labels != IGNORE
    picked = logits[:, :-1, :][mask]
    return torch.nn.functional.cross_entropy(picked.float(), shift_labels[mask], reduction="sum")


def chunk_rows(vocab_size: int, budget_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk so that a chunk's fp32 logits take at most `budget_bytes` (at least one row)."""
    return max(1, budget_bytes // (max(1, vocab_size) * 4))


def output_head(model: Any) -> torch.nn.Module | None:
    """The module that turns final hidden states into logits (lm_head), through PEFT wrappers; None if unknown."""
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if head is None and hasattr(model, "get_base_model"):
        return output_head(model.get_base_model())
    return head if isinstance(head, torch.nn.Module) else None


def logits_postprocess(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the model does to the head's output before returning logits, as far as we reproduce it."""
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    if cap:  # Gemma 2: logits / cap -> tanh -> * cap, in the head's output dtype as the model does it
        cap = float(cap)
        return lambda logits: torch.tanh(logits / cap) * cap
    return lambda logits: logits


def _small(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """The first row's first PROBE_TOKENS tokens of every (batch, seq) input; None for inputs of another shape."""
    shape = inputs["input_ids"].shape if "input_ids" in inputs else None
    if shape is None or len(shape) != 2 or any(v.shape != shape for v in inputs.values()):
        return None
    return {k: v[:1, :PROBE_TOKENS] for k, v in inputs.items()}


def _probe(model: Any, head: torch.nn.Module, inputs: dict[str, torch.Tensor], autocast: Callable[[], Any]) -> bool:
    """Whether postprocess(head(hidden)) gives the model's logits: one call of the head, hidden as long as the input."""
    if head._forward_hooks or head._forward_pre_hooks:  # hooks would see hidden states, not logits
        return False
    small = _small(inputs)
    if small is None:
        return False
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    handle = head.register_forward_hook(lambda module, args, output: calls.append((args[0], output)) if args else None)
    device = small["input_ids"].device
    try:  # the probe's dropout must not move the run's random stream
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), autocast():
            logits = model(**small, use_cache=False).logits
    finally:
        handle.remove()
    if len(calls) != 1 or not isinstance(calls[0][1], torch.Tensor):
        return False
    hidden, output = calls[0]
    expected = logits_postprocess(model)(output)
    return (hidden.shape[:2] == small["input_ids"].shape == logits.shape[:2] and expected.shape == logits.shape
            and torch.allclose(expected.float(), logits.float(), rtol=1e-5, atol=1e-6))


def chunked_supported(model: Any, inputs: dict[str, torch.Tensor],
                      autocast: Callable[[], Any] = contextlib.nullcontext) -> bool:
    """Whether the chunked path reproduces this model's loss (probed once per model, on a slice of `inputs`)."""
    head = output_head(model)
    if head is None:
        return False
    if head._forward_hooks or head._forward_pre_hooks:
        return False
    known = _SUPPORTED.get(model)
    if known is None:
        known = _SUPPORTED[model] = _probe(model, head, inputs, autocast)
    return known


@contextlib.contextmanager
def _head_bypassed(head: torch.nn.Module, captured: list[torch.Tensor]) -> Any:
    """While inside, the head returns its input (the final hidden states) and records it in `captured`."""
    own = head.__dict__.get("forward")  # an instance forward (accelerate's hooks) is put back as it was

    def passthrough(*args: Any, **kwargs: Any) -> torch.Tensor:
        hidden = args[0] if args else next(iter(kwargs.values()))
        captured.append(hidden)
        return hidden

    head.__dict__["forward"] = passthrough  # what nn.Module.__call__ runs, ahead of the class's forward
    try:
        yield
    finally:
        if own is not None:
            head.__dict__["forward"] = own
        else:
            del head.__dict__["forward"]


def _chunk_loss(head: torch.nn.Module, post: Callable[[torch.Tensor], torch.Tensor], autocast: Callable[[], Any],
                hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with autocast():
        logits = post(head(hidden))
    return torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")


def chunked_loss_sum(model: Any, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                     autocast: Callable[[], Any] = contextlib.nullcontext, rows: int | None = None) -> torch.Tensor:
    """`summed_loss` of the model's logits, never holding the logits of more than `rows` rows at once.

    The caller checks `chunked_supported` first. `rows` defaults to `chunk_rows(vocab)`.
    """
    head = output_head(model)
    assert head is not None
    captured: list[torch.Tensor] = []
    with _head_bypassed(head, captured), autocast():
        model(**inputs, use_cache=False)
    if len(captured) != 1:
        raise RuntimeError(f"the output head ran {len(captured)} times in one forward (expected once)")
    hidden = captured[0]
    shift_labels = labels[:, 1:].to(hidden.device)
    mask = shift_labels != IGNORE
    picked = hidden[:, :-1][mask]  # (target tokens, hidden): only the rows that carry a loss
    targets = shift_labels[mask]
    weight = getattr(head, "weight", None)
    vocab = int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.dim() == 2 else 0
    rows = rows or chunk_rows(vocab or int(getattr(getattr(model, "config", None), "vocab_size", 0) or 1))
    post = logits_postprocess(model)
    params = [p for p in head.parameters() if p.requires_grad]  # a trained head: full fine-tuning, modules_to_save
    if torch.is_grad_enabled() and (picked.requires_grad or params):
        return _HeadLoss.apply(picked, targets, rows, head, post, autocast, *params)
    total = picked.new_zeros((), dtype=torch.float32)
    for start in range(0, picked.shape[0], rows):
        total = total + _chunk_loss(head, post, autocast, picked[start:start + rows], targets[start:start + rows])
    return total


class _HeadLoss(torch.autograd.Function):
    """Summed cross-entropy of head(hidden rows), chunk by chunk, with the head's backward done in the forward.

    Inputs: hidden rows (n, d), targets (n,), rows per chunk, the head, the logits post-processing, the autocast
    context and the head's trainable parameters (so that their gradients flow, tied weights included). Output: the
    summed loss (fp32 scalar). Saved for backward: d loss / d hidden (n x d) and d loss / d parameters.
    """

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, targets: torch.Tensor, rows: int, head: torch.nn.Module,
                post: Callable[[torch.Tensor], torch.Tensor], autocast: Callable[[], Any],
                *params: torch.Tensor) -> torch.Tensor:
        grad_hidden = torch.empty_like(hidden)
        grad_params: list[torch.Tensor | None] = [None] * len(params)
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.shape[0], rows):
            with torch.enable_grad():
                part = hidden[start:start + rows].detach().requires_grad_(True)
                loss = _chunk_loss(head, post, autocast, part, targets[start:start + rows])
                grads = torch.autograd.grad(loss, [part, *params], allow_unused=True)
            total += loss.detach()
            grad_hidden[start:start + rows] = grads[0]
            for i, grad in enumerate(grads[1:]):
                sofar = grad_params[i]
                if grad is not None:
                    grad_params[i] = grad if sofar is None else sofar.add_(grad)
        ctx.grads = (grad_hidden, grad_params)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_hidden, grad_params = ctx.grads
        ctx.grads = None  # scaled in place and handed over: a second backward through this graph is not supported
        scale = grad_output.to(grad_hidden.dtype)
        params = tuple(None if g is None else g.mul_(scale.to(g.dtype)) for g in grad_params)
        return (grad_hidden.mul_(scale), None, None, None, None, None, *params)


def plain_loss_sum(model: Any, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                   autocast: Callable[[], Any] = contextlib.nullcontext) -> torch.Tensor:
    """`summed_loss` of the model's full logits (batch x seq x vocab held at once)."""
    with autocast():
        logits = model(**inputs, use_cache=False).logits
    return summed_loss(logits, labels)


def model_loss_sum(model: Any, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                   autocast: Callable[[], Any] = contextlib.nullcontext, chunked: bool = True) -> torch.Tensor:
    """Summed next-token loss of `model` on one batch: chunked where the model allows it, else the plain path."""
    if chunked and chunked_supported(model, inputs, autocast):
        return chunked_loss_sum(model, inputs, labels, autocast)
    return plain_loss_sum(model, inputs, labels, autocast)
