"""Chat data through real-world chat templates: one BOS, assistant-only loss, and non-prefix-stable templates refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine.data import IGNORE, prepare, prompt_ids
from engine.errors import DataError
from engine.models import load_tokenizer
from tests.conftest import make_config

# Meta-Llama-3-8B-Instruct's template: BOS is part of the template.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Qwen2-Instruct's ChatML template: a default system prompt, no BOS.
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Like Qwen3: reasoning of earlier assistant turns is stripped once a later turn follows.
STRIPS_REASONING = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}{% set c = m['content'] %}"
    "{% if not loop.last and '</think>' in c %}{% set c = c.split('</think>')[-1].lstrip('\n') %}{% endif %}"
    "<|im_start|>assistant\n{{ c }}<|im_end|>\n{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# An end marker closes every rendering, so a prompt rendered alone is not a prefix of the longer one.
END_MARKER = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
              "{% if add_generation_prompt %}[assistant] {% else %}<|end|>{% endif %}")
# Mistral-7B-Instruct-v0.1's template: BOS in the template, no generation prompt, roles out of order raise.
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

TWO_TURNS = [{"role": "user", "content": "Add 2 and 5."}, {"role": "assistant", "content": "7"},
             {"role": "user", "content": "And 1 more?"}, {"role": "assistant", "content": "8"}]


@pytest.fixture(scope="module")
def base_tokenizer():
    return load_tokenizer(make_config("lora"))


def with_template(tokenizer, template: str | None):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


def prepared(tokenizer, tmp_path: Path, conversations: list[list[dict]], **cfg):
    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations))
    return prepare(tokenizer, str(src), make_config("lora", data={"eval_split": 0, **cfg}).data, 512, 0)


def split(tokenizer, ex) -> tuple[str, str]:
    keep = [t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE]
    return tokenizer.decode(keep), tokenizer.decode(ex.input_ids)


def test_llama3_template_with_bos_gives_one_bos(base_tokenizer, tmp_path) -> None:
    tok = with_template(base_tokenizer, LLAMA3)
    ex = prepared(tok, tmp_path, [TWO_TURNS]).train[0]
    assert ex.input_ids[0] == tok.bos_token_id and ex.input_ids.count(tok.bos_token_id) == 1
    trained, everything = split(tok, ex)
    assert trained == "7<|eot_id|>8<|eot_id|>"
    assert everything == tok.apply_chat_template(TWO_TURNS, tokenize=False)  # the mask splits the real rendering
    prompt = tok.apply_chat_template(TWO_TURNS[:1], tokenize=False, add_generation_prompt=True)
    assert prompt_ids(tok, prompt).count(tok.bos_token_id) == 1  # generation sees what training saw


def test_chatml_template_without_bos_gets_the_tokenizers_bos(base_tokenizer, tmp_path) -> None:
    tok = with_template(base_tokenizer, QWEN2)
    ex = prepared(tok, tmp_path, [TWO_TURNS]).train[0]
    trained, everything = split(tok, ex)
    assert ex.input_ids.count(tok.bos_token_id) == 1
    assert everything == "<s>" + tok.apply_chat_template(TWO_TURNS, tokenize=False)
    assert trained == "7<|im_end|>\n8<|im_end|>\n"
    assert "You are a helpful assistant." not in trained and "Add 2 and 5." not in trained


def test_train_on_prompt_trains_every_token_but_the_first(base_tokenizer, tmp_path) -> None:
    tok = with_template(base_tokenizer, QWEN2)
    ex = prepared(tok, tmp_path, [TWO_TURNS], train_on_prompt=True).train[0]
    assert all(label != IGNORE for label in ex.labels[1:])


def test_reasoning_stripping_template_is_refused_not_mismasked(base_tokenizer, tmp_path) -> None:
    tok = with_template(base_tokenizer, STRIPS_REASONING)
    turns = [dict(m) for m in TWO_TURNS]
    turns[1]["content"] = "<think>2+5</think>\n7"
    with pytest.raises(DataError) as info:
        prepared(tok, tmp_path, [TWO_TURNS, turns])
    message = info.value.message
    assert "chat.jsonl: line 2: the chat template is not prefix-stable" in message
    assert "the conversation through message 2 (user) does not start with the rendering of messages 0-1" in message
    assert "<think>" in message and "one record per assistant turn" in info.value.hint
    single = prepared(tok, tmp_path, [turns[:2]]).train[0]  # one turn: stable, reasoning is trained
    assert split(tok, single)[0] == "<think>2+5</think>\n7<|im_end|>\n"


def test_end_marker_template_is_refused(base_tokenizer, tmp_path) -> None:
    tok = with_template(base_tokenizer, END_MARKER)
    with pytest.raises(DataError) as info:
        prepared(tok, tmp_path, [TWO_TURNS])
    assert "line 1: the chat template is not prefix-stable: the prompt for message 1 (assistant)" in info.value.message
    assert "<|end|>' became " in info.value.message and "[assistant] '" in info.value.message


def test_template_exception_names_record_and_message(base_tokenizer, tmp_path) -> None:
    tok = with_template(base_tokenizer, MISTRAL)
    ex = prepared(tok, tmp_path, [TWO_TURNS]).train[0]
    assert split(tok, ex)[0] == "7</s>8</s>" and ex.input_ids.count(tok.bos_token_id) == 1
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]
    with pytest.raises(DataError) as info:
        prepared(tok, tmp_path, [TWO_TURNS, bad])
    assert "line 2: the chat template failed up to message 1 (user)" in info.value.message
    assert "Conversation roles must alternate" in info.value.message and "roles" in info.value.hint


def test_no_template_falls_back_to_role_tags_ending_each_reply(base_tokenizer, tmp_path) -> None:
    tok = with_template(base_tokenizer, None)
    trained, everything = split(tok, prepared(tok, tmp_path, [TWO_TURNS]).train[0])
    assert trained == "7</s>\n8</s>\n"
    assert everything.startswith("<s><|user|>\nAdd 2 and 5.\n<|assistant|>\n7</s>")
