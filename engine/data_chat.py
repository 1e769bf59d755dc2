"""Conversations through the model's chat template: trainable assistant turns, checked for prefix stability."""

from __future__ import annotations

from typing import Any

from engine.data_formats import SEGMENT_ROLE, TRAIN_KEY, trains
from engine.errors import DataError

PREFIX_HINT = ("the chat template renders earlier turns differently once more is added (e.g. it strips earlier "
               "reasoning or places an end marker only at the end), so the prompt tokens cannot be masked safely: "
               "split multi-turn records into one record per assistant turn, or set a prefix-stable template")


def render_chat(tokenizer: Any, messages: list[dict[str, Any]], add_generation_prompt: bool = False,
                tools: list[Any] | None = None) -> str:
    """The conversation as text, through the tokenizer's chat template (or a plain role-tagged layout)."""
    if getattr(tokenizer, "chat_template", None):
        kwargs: dict[str, Any] = {"tools": tools} if tools else {}
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                             **kwargs)
    eos = tokenizer.eos_token or ""
    text = "".join(f"<|{m['role']}|>\n{m['content']}{eos if m['role'] == 'assistant' else ''}\n" for m in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")


def _render(tokenizer: Any, messages: list[dict[str, Any]], generation: bool, tools: list[Any] | None,
            where: str) -> str:
    try:
        return render_chat(tokenizer, messages, add_generation_prompt=generation, tools=tools)
    except Exception as exc:  # a template's own raise_exception, a jinja error, a wrong type
        last = (f"up to message {len(messages) - 1} ({messages[-1]['role']})" if messages else
                "on the prompt of a conversation that opens with an assistant reply")
        raise DataError(f"{where}: the chat template failed {last}: {type(exc).__name__}: {exc}"[:600],
                        "check the roles and their order (many templates want system?, then user/assistant "
                        "alternating), or the template itself") from None


def _upto(i: int) -> str:
    if i == 0:
        return "the empty rendering"
    return "the rendering of message 0" if i == 1 else f"the rendering of messages 0-{i - 1}"


def _divergence(before: str, after: str) -> tuple[int, str, str]:
    k = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    start = max(0, k - 20)
    return k, before[start:k + 30], after[start:k + 30]


def _require_prefix(previous: str, current: str, where: str, what: str, before: str) -> None:
    if current.startswith(previous):
        return
    k, was, now = _divergence(previous, current)
    raise DataError(f"{where}: the chat template is not prefix-stable: {what} does not start with {before} "
                    f"(they differ at character {k}: {was!r} became {now!r})", PREFIX_HINT)


def chat_segments(tokenizer: Any, messages: list[dict[str, Any]], tools: list[Any] | None = None,
                  where: str = "record") -> list[tuple[str, bool]]:
    """(text, trainable) pieces of a conversation: assistant replies train, everything else is context (a message's
    own `train` flag, axolotl's, overrides that either way).

    Each piece is the difference between successive renderings, so every rendering must extend the one
    before it; a template that rewrites earlier text gets a DataError instead of a wrong mask.
    """
    if messages and messages[0]["role"] == SEGMENT_ROLE:  # axolotl's input_output: the text as is, no template
        return [(m["content"], bool(m[TRAIN_KEY])) for m in messages if m["content"]]
    pieces: list[tuple[str, bool]] = []
    previous = ""
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "assistant":
            prompt = _render(tokenizer, messages[:i], True, tools, where)
            _require_prefix(previous, prompt, where, f"the prompt for message {i} (assistant)", _upto(i))
            pieces.append((prompt[len(previous):], False))
            previous = prompt
        rendered = _render(tokenizer, messages[: i + 1], False, tools, where)
        before = "its generation prompt" if role == "assistant" else _upto(i)
        _require_prefix(previous, rendered, where, f"the conversation through message {i} ({role})", before)
        pieces.append((rendered[len(previous):], trains(message)))
        previous = rendered
    return [(text, trainable) for text, trainable in pieces if text]
