"""Record shapes of LLaMA-Factory, axolotl, OpenAI and TRL: detection, explicit selection, loss masks, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.data import IGNORE, prepare
from engine.data_files import ASSETS
from engine.errors import DataError
from engine.models import load_tokenizer
from tests.conftest import make_config

FORMATS_DIR = ASSETS / "formats"
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def tokenizer():
    tok = load_tokenizer(make_config("lora"))
    tok.chat_template = CHATML
    return tok


def data_cfg(**kw):
    return make_config("lora", data={"eval_split": 0, **kw}).data


def write(tmp_path: Path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def trained(tokenizer, ex) -> str:
    return tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE])


def context(tokenizer, ex) -> str:
    return tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label == IGNORE])


SHIPPED = [("alpaca.json", "alpaca"), ("sharegpt.json", "sharegpt"), ("messages.jsonl", "chat"),
           ("prompt_completion.jsonl", "prompt_completion"), ("input_output.jsonl", "input_output"),
           ("text.jsonl", "text")]


@pytest.mark.parametrize(("name", "fmt"), SHIPPED, ids=[s[1] for s in SHIPPED])
def test_shipped_samples_are_detected_and_train(tokenizer, name, fmt) -> None:
    prepared = prepare(tokenizer, str(FORMATS_DIR / name), data_cfg(), 512, 0)
    assert prepared.format == fmt and len(prepared.train) == 3 and prepared.dropped == {}
    for ex in prepared.train:
        assert ex.input_ids.count(tokenizer.bos_token_id) == 1 and ex.input_ids[0] == tokenizer.bos_token_id
        assert trained(tokenizer, ex).strip()


def test_alpaca_system_and_history_as_llama_factory_documents(tokenizer) -> None:
    prepared = prepare(tokenizer, str(FORMATS_DIR / "alpaca.json"), data_cfg(), 512, 0)
    with_system, with_history = prepared.train[1], prepared.train[2]
    assert context(tokenizer, with_system).startswith("<s>You are a careful assistant.\n\n### Instruction:")
    assert trained(tokenizer, with_system) == "n u s</s>"
    assert trained(tokenizer, with_history) == "1 plus 3 is 4.</s>4 plus 1 is 5.</s>"  # every answer, each ended
    assert "Add 1 and 3." in context(tokenizer, with_history) and "And now add 1" in context(tokenizer, with_history)


def test_sharegpt_roles_system_and_tool_turns(tokenizer) -> None:
    prepared = prepare(tokenizer, str(FORMATS_DIR / "sharegpt.json"), data_cfg(), 512, 0)
    first, _, tool_use = prepared.train
    assert context(tokenizer, first).startswith("<s><|im_start|>system\nYou are a careful assistant.<|im_end|>\n"
                                                "<|im_start|>user\nAdd 2 and 5.")
    assert trained(tokenizer, first) == "2 plus 5 is 7.<|im_end|>\n8.<|im_end|>\n"
    # function_call is the assistant's (trained), observation is the tool's answer (context)
    assert trained(tokenizer, tool_use).startswith('{"name": "get_weather"')
    assert "<|im_start|>tool\n{\"temperature_c\": 21}" in context(tokenizer, tool_use)
    assert any("define tools, but the model's chat template does not render tools" in n for n in prepared.notes)


def test_sharegpt_tools_reach_a_template_that_renders_them(tokenizer, tmp_path) -> None:
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}" + CHATML
    prepared = prepare(tok, str(FORMATS_DIR / "sharegpt.json"), data_cfg(), 512, 0)
    assert '"name": "get_weather"' in context(tok, prepared.train[2]).split("<|im_start|>user")[0]
    assert not any("tools" in n for n in prepared.notes)


def test_openai_messages_with_text_parts(tokenizer) -> None:
    prepared = prepare(tokenizer, str(FORMATS_DIR / "messages.jsonl"), data_cfg(), 512, 0)
    parts = prepared.train[1]
    assert "<|im_start|>user\nSpell the word backwards: sun<|im_end|>" in context(tokenizer, parts)
    assert trained(tokenizer, parts) == "n u s<|im_end|>\n"
    assert trained(tokenizer, prepared.train[2]) == "1 plus 3 is 4.<|im_end|>\n5.<|im_end|>\n"


def test_prompt_completion_plain_and_conversational(tokenizer) -> None:
    plain, _, chat = prepare(tokenizer, str(FORMATS_DIR / "prompt_completion.jsonl"), data_cfg(), 512, 0).train
    assert context(tokenizer, plain) == "<s>Add 2 and 5.\nAnswer:" and trained(tokenizer, plain) == " 2 plus 5 is 7.</s>"
    assert trained(tokenizer, chat) == "1 plus 3 is 4.<|im_end|>\n"


def test_text_field_setting_and_explicit_format(tokenizer, tmp_path) -> None:
    src = write(tmp_path, "body.jsonl", [{"body": "raw text here", "id": 1}])
    prepared = prepare(tokenizer, src, data_cfg(text_field="body"), 512, 0)
    assert prepared.format == "text" and trained(tokenizer, prepared.train[0]) == "raw text here</s>"
    both = write(tmp_path, "both.jsonl", [{"instruction": "q", "output": "a", "text": "plain document"}])
    assert prepare(tokenizer, both, data_cfg(), 512, 0).format == "alpaca"
    as_text = prepare(tokenizer, both, data_cfg(format="text"), 512, 0)
    assert as_text.format == "text" and trained(tokenizer, as_text.train[0]) == "plain document</s>"


def error(tokenizer, tmp_path, rows, **cfg) -> DataError:
    src = write(tmp_path, "data.jsonl", rows)
    with pytest.raises(DataError) as info:
        prepare(tokenizer, src, data_cfg(**cfg), 512, 0)
    assert src in info.value.message
    return info.value


def test_unknown_shape_lists_fields_found_and_shapes_supported(tokenizer, tmp_path) -> None:
    err = error(tokenizer, tmp_path, [{"question": "q", "answer": "a"}])
    assert "line 1: cannot tell the format from fields ['answer', 'question']" in err.message
    for shape in ("alpaca {instruction, output}", "sharegpt {conversations", "chat {messages",
                  "prompt_completion {prompt, completion}", "text {text}"):
        assert shape in err.hint


def test_inconsistent_record_names_line_fields_and_expectation(tokenizer, tmp_path) -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}] * 2
    err = error(tokenizer, tmp_path, [*rows, {"prompt": "q", "completion": "a"}])
    assert "line 3: missing field 'messages' of the chat format (detected from" in err.message
    assert "line 1); this record has fields ['completion', 'prompt'], chat needs ['messages']" in err.message


def test_explicit_format_that_does_not_fit(tokenizer, tmp_path) -> None:
    err = error(tokenizer, tmp_path, [{"instruction": "q", "output": "a"}], format="chat")
    assert "line 1: missing field 'messages' of the chat format (data.format=chat)" in err.message
    conv = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]
    err = error(tokenizer, tmp_path, conv, format="chat")
    assert "set data.format to sharegpt" in err.hint


PREFERENCE = [
    ({"prompt": "q", "chosen": "good", "rejected": "bad"}, "chosen, rejected"),  # TRL / LLaMA-Factory
    ({"instruction": "q", "input": "", "chosen": "good", "rejected": "bad"}, "chosen, rejected"),
    ({"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "a"},
      "rejected": {"from": "gpt", "value": "b"}}, "chosen, rejected"),
]


@pytest.mark.parametrize(("row", "fields"), PREFERENCE, ids=["trl", "alpaca", "sharegpt"])
def test_preference_data_is_refused(tokenizer, tmp_path, row, fields) -> None:
    err = error(tokenizer, tmp_path, [row])
    assert f"line 1: looks like preference data (fields {fields})" in err.message and "DPO" in err.hint


KTO = [
    ({"prompt": "q", "completion": "a", "label": True}, "label: true"),  # TRL unpaired preference
    # LLaMA-Factory's data/kto_en_demo.json: ShareGPT-style messages and a boolean label per record
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}], "label": False},
     "label: false"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "kto_tag": True},
     "kto_tag: true"),
]


@pytest.mark.parametrize(("row", "verdict"), KTO, ids=["trl", "llama-factory-messages", "kto_tag"])
def test_kto_data_is_refused_with_the_fix(tokenizer, tmp_path, row, verdict) -> None:
    good = {k: v for k, v in row.items() if k not in ("label", "kto_tag")}
    err = error(tokenizer, tmp_path, [good, row])  # a later record too: every record is checked
    assert f"line 2: looks like KTO preference data (field {verdict})" in err.message
    assert "labelled false" in err.message and "KTO trainer" in err.hint and "drop the" in err.hint


BAD_TURNS = [
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]},
     "line 1: conversations[1]: unknown speaker 'from': 'bot'"),
    ({"conversations": [{"from": "human", "value": 3}]}, "conversations[0]: 'value' must be a string, got int"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0] is a 'image_url' part: only text parts are supported"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "value": "hi"}]}]},
     "messages[0].content[0] is a text part without a 'text' string (it has ['value'])"),
    ({"messages": []}, "field 'messages' must be a non-empty list of turns"),
    ({"conversations": "hello"}, "field 'conversations' must be a non-empty list of turns"),
    ({"instruction": "q", "output": "a", "history": [["only one"]]}, "'history' must be a list of [instruction, res"),
    ({"instruction": "q", "output": ["good", "bad"]}, "field 'output' must be a string, got list"),
    ({"conversations": [{"from": "gpt", "value": "a"}], "tools": "[not json"}, "field 'tools' is not JSON"),
]


@pytest.mark.parametrize(("row", "message"), BAD_TURNS, ids=[m.split(":")[0][:24] for _, m in BAD_TURNS])
def test_bad_records_name_the_place_and_the_fix(tokenizer, tmp_path, row, message) -> None:
    err = error(tokenizer, tmp_path, [row])
    assert message in err.message and err.hint


def test_conversation_without_an_answer_is_an_empty_response(tokenizer, tmp_path) -> None:
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "user", "content": "q"}]},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]}]
    prepared = prepare(tokenizer, write(tmp_path, "d.jsonl", rows), data_cfg(), 512, 0)
    assert len(prepared.train) == 1 and prepared.dropped == {"empty_response": 2}


def test_parquet_rows_with_absent_keys_filled_by_none(tokenizer, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "name": "bot"}]},
            {"messages": [{"role": "user", "content": "r"}, {"role": "assistant", "content": "b"}]}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "hub.parquet")  # message 0 gets name=None
    prepared = prepare(tokenizer, str(tmp_path / "hub.parquet"), data_cfg(), 512, 0)
    assert [trained(tokenizer, ex) for ex in prepared.train] == ["a<|im_end|>\n", "b<|im_end|>\n"]


def test_axolotl_per_message_train_flags_are_honoured(tokenizer, tmp_path) -> None:
    """axolotl's chat_template `train` per message (and its older sharegpt `weight` 0/1) wins over the role."""
    rows = [{"messages": [{"role": "user", "content": "Q1", "train": True},
                          {"role": "assistant", "content": "A1", "train": False},
                          {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]},
            {"conversations": [{"from": "human", "value": "Q3"}, {"from": "gpt", "value": "A3", "weight": 0},
                               {"from": "human", "value": "Q4"}, {"from": "gpt", "value": "A4", "weight": 1}]},
            {"messages": [{"role": "user", "content": "Q5"}, {"role": "assistant", "content": "A5", "train": False}]}]
    chat = prepare(tokenizer, write(tmp_path, "chat.jsonl", rows[:1]), data_cfg(), 512, 0).train[0]
    sharegpt = prepare(tokenizer, write(tmp_path, "sharegpt.jsonl", rows[1:2]), data_cfg(), 512, 0).train[0]
    assert trained(tokenizer, chat) == "<|im_start|>user\nQ1<|im_end|>\nA2<|im_end|>\n"  # a whole user turn
    assert "A1" in context(tokenizer, chat) and "Q2" in context(tokenizer, chat)
    assert trained(tokenizer, sharegpt) == "A4<|im_end|>\n" and "A3" in context(tokenizer, sharegpt)
    nothing = prepare(tokenizer, write(tmp_path, "some.jsonl", [rows[0], rows[2]]), data_cfg(), 512, 0)
    assert len(nothing.train) == 1 and nothing.dropped == {"empty_response": 1}  # every message masked


@pytest.mark.parametrize(("turn", "message"), [
    ({"role": "assistant", "content": "a", "train": "yes"}, "messages[1]: 'train' must be true or false, got 'yes'"),
    ({"role": "assistant", "content": "a", "weight": 0.5}, "messages[1]: 'weight' must be 0 or 1, got 0.5"),
    ({"role": "assistant", "content": "a", "train_detail": [{"begin_offset": 0, "end_offset": 1, "train": True}]},
     "messages[1]: 'train_detail' (axolotl's per-character spans) is not supported")])
def test_train_flags_that_cannot_be_honoured_are_refused(tokenizer, tmp_path, turn, message) -> None:
    err = error(tokenizer, tmp_path, [{"messages": [{"role": "user", "content": "q"}, turn]}])
    assert message in err.message and err.hint


def test_axolotl_input_output_segments_train_where_labelled_as_is(tokenizer) -> None:
    """axolotl's template-free format: the segments' text joined as it is (no template, no EOS added), the loss on
    the segments labelled true; a BOS written in the text is the only one."""
    first, _, turns = prepare(tokenizer, str(FORMATS_DIR / "input_output.jsonl"), data_cfg(), 512, 0).train
    assert tokenizer.decode(first.input_ids) == "<s>Add 2 and 5.\nAnswer: 2 plus 5 is 7.</s>"
    assert first.input_ids.count(tokenizer.bos_token_id) == 1
    assert context(tokenizer, first) == "<s>Add 2 and 5.\nAnswer:" and trained(tokenizer, first) == " 2 plus 5 is 7.</s>"
    assert trained(tokenizer, turns) == " 1 plus 3 is 4.</s> 5.</s>"
    assert "And 1 more?" in context(tokenizer, turns) and "<|im_start|>" not in tokenizer.decode(turns.input_ids)


@pytest.mark.parametrize(("row", "message"), [
    ({"segments": []}, "field 'segments' must be a non-empty list of {label, text} segments"),
    ({"segments": [{"label": "yes", "text": "a"}]}, "segments[0]: 'label' must be true (trained) or false (masked)"),
    ({"segments": [{"label": True, "value": "a"}]}, "segments[0]: needs a string 'text' and a boolean 'label', has"),
], ids=["empty", "label", "text"])
def test_bad_segments_name_the_place(tokenizer, tmp_path, row, message) -> None:
    err = error(tokenizer, tmp_path, [row])
    assert message in err.message and err.hint
