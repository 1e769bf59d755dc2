"""The one BOS rule: which tokenizers' models read a BOS first (training adds it), and a tokenizer that adds it itself.

Training, `lf-tui eval` and `lf-tui generate` put exactly one BOS before the text when the model expects one. The
tokenizer a run loads (and so saves in its exports) is made to do the same by itself: its post-processor adds the BOS
to plain text (`tokenizer(text)`, as `pipeline(text)` and lm-eval call it), and its chat template renders the BOS
(`apply_chat_template(..., tokenize=True)` adds no special tokens), so stock tools see the tokens training saw.
"""

from __future__ import annotations

import weakref
from typing import Any

_ADDS_BOS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_PROBE = [{"role": "user", "content": "x"}]


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer's own encoding (special tokens on) starts plain text with its BOS."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos


def expects_bos(tokenizer: Any) -> bool:
    """Whether the model reads a BOS first: its tokenizer has a BOS distinct from its EOS (Llama, Mistral, Gemma,
    the built-in model), or adds one itself. GPT-2 and GPT-NeoX use one <|endoftext|> for both and add none; Qwen2 has
    no BOS: neither gets one."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    if bos != tokenizer.eos_token_id:
        return True
    try:  # asked for every example: the answer is kept per tokenizer
        return _ADDS_BOS[tokenizer]
    except (KeyError, TypeError):
        answer = adds_bos(tokenizer)
    try:
        _ADDS_BOS[tokenizer] = answer
    except TypeError:
        pass
    return answer


def _template_renders_bos(tokenizer: Any, template: str) -> bool:
    try:
        text = tokenizer.apply_chat_template(_PROBE, tokenize=False, add_generation_prompt=True)
    except Exception:  # a template that wants other roles: leave it as it is
        return True
    return "bos_token" in template or str(text).startswith(tokenizer.bos_token)


def add_bos_as_training_does(tokenizer: Any) -> list[str]:
    """Make `tokenizer` add the BOS that training adds, to plain text and in its chat template (once: a template that
    renders it already is kept); tokenizers whose model expects no BOS are left as they are. Returns notes for what
    could not be done."""
    if not expects_bos(tokenizer):
        return []
    notes = []
    if not adds_bos(tokenizer):
        try:
            tokenizer.add_bos_token = True  # transformers 5: rewrites the post-processor, saved in tokenizer.json
        except (AttributeError, ValueError, TypeError):
            pass
        if not adds_bos(tokenizer):
            notes.append(f"the tokenizer ({type(tokenizer).__name__}) cannot be set to add its BOS itself: tools "
                         f"that load the export must prepend {tokenizer.bos_token!r} as training did")
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template and not _template_renders_bos(tokenizer, template):
        tokenizer.chat_template = "{{ bos_token }}" + template
    return notes
