"""Datasets: formats, loss masks, truncation, eval split, and a clear error for each kind of bad data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.data import IGNORE, prepare
from engine.errors import DataError
from engine.models import load_tokenizer
from tests.conftest import make_config


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(make_config("lora"))


def data_cfg(**kw):
    return make_config("lora", data=kw).data


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def test_alpaca_loss_only_on_the_response(tokenizer, tmp_path) -> None:
    src = write(tmp_path, "a.jsonl", json.dumps({"instruction": "Add 1 and 2.", "input": "", "output": "3"}) + "\n")
    ex = prepare(tokenizer, src, data_cfg(eval_split=0), 512, 0).train[0]
    trained = [t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE]
    assert tokenizer.decode(trained).strip() == "3</s>"
    everything = prepare(tokenizer, src, data_cfg(eval_split=0, train_on_prompt=True), 512, 0).train[0]
    assert sum(label != IGNORE for label in everything.labels) > len(trained)


def test_chat_with_template_trains_on_assistant_turns(tokenizer, tmp_path) -> None:
    rec = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    src = write(tmp_path, "c.json", json.dumps([rec]))
    prepared = prepare(tokenizer, src, data_cfg(eval_split=0), 512, 0)
    ex = prepared.train[0]
    assert prepared.format == "chat"
    assert "hello" in tokenizer.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])
    assert "hi" not in tokenizer.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])


def test_text_csv_and_parquet(tokenizer, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_src = write(tmp_path, "t.csv", "text\nhello world\nanother line\n")
    assert prepare(tokenizer, csv_src, data_cfg(eval_split=0), 512, 0).format == "text"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["x", "y"]}), tmp_path / "d.parquet")
    prepared = prepare(tokenizer, str(tmp_path / "d.parquet"), data_cfg(eval_split=0.5), 512, 0)
    assert prepared.format == "alpaca" and len(prepared.train) == 1 and len(prepared.eval) == 1


def test_truncation_is_counted(tokenizer, tmp_path) -> None:
    src = write(tmp_path, "long.jsonl", json.dumps({"instruction": "x", "output": "word " * 200}) + "\n")
    prepared = prepare(tokenizer, src, data_cfg(eval_split=0), 32, 0)
    assert prepared.truncated == 1 and len(prepared.train[0].input_ids) == 32 and "truncated" in prepared.notes[0]


BAD = [
    ("empty.jsonl", "", "is empty"),
    ("notjson.jsonl", '{"instruction": "a", "output": "b"}\n{oops\n', "line 2: not JSON"),
    ("missing.jsonl", '{"instruction": "a", "output": "b"}\n' * 5 + '{"instruction": "a"}\n', "line 6: missing field 'output'"),
    ("type.jsonl", '{"instruction": "a", "output": 5}\n', "field 'output' must be a string, got int"),
    ("binary.jsonl", b"\x00\x01\x02binary", "binary file"),
    ("latin1.jsonl", '{"instruction": "caf\xe9", "output": "b"}\n'.encode("latin-1"), "line 1: not UTF-8"),
    ("array.json", '{"instruction": "a"', "line 1 column"),
    ("data.txt", "hello", "unsupported file type"),
    ("chat.jsonl", '{"messages": [{"role": "user"}]}\n', "line 1: messages[0]: needs string 'role' and 'content'"),
    ("unknown.jsonl", '{"question": "a"}\n', "line 1: cannot tell the format from fields ['question']"),
    ("mixed.jsonl", '{"instruction": "a", "output": "b"}\n{"messages": []}\n',
     "line 2: missing field 'instruction' of the alpaca format (detected from"),
    ("prefs.jsonl", '{"prompt": "a", "chosen": "b", "rejected": "c"}\n', "line 1: looks like preference data"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_data_names_file_and_line(tokenizer, tmp_path, name, content, message) -> None:
    src = write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        prepare(tokenizer, src, data_cfg(), 512, 0)
    assert message in info.value.message and name in info.value.message


def test_missing_file(tokenizer) -> None:
    with pytest.raises(DataError, match="no such file"):
        prepare(tokenizer, "/nonexistent/data.jsonl", data_cfg(), 512, 0)


def test_tokenised_dataset_is_cached_by_content(tokenizer, tmp_path) -> None:
    from engine.data_cache import cached_prepare

    src = write(tmp_path, "a.jsonl", "".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n"
                                            for i in range(10)))
    cfg = make_config("lora")
    cache = tmp_path / "cache"
    first = cached_prepare(cache, tokenizer, src, cfg, None)
    [entry] = list(cache.glob("*.json"))
    assert cached_prepare(cache, tokenizer, src, cfg, None) == first
    entry.write_text("{broken")
    assert cached_prepare(cache, tokenizer, src, cfg, None) == first  # a corrupt entry is rebuilt
    Path(src).write_text(json.dumps({"instruction": "new", "output": "data"}) + "\n")
    assert cached_prepare(cache, tokenizer, src, cfg, None) != first and len(list(cache.glob("*.json"))) == 2


def _alpaca_lines(records: list[tuple[str, str]]) -> str:
    return "".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in records)


def test_examples_with_nothing_to_learn_are_counted_per_cause_and_dropped(tokenizer, tmp_path) -> None:
    long_prompt = "word " * 100
    src = write(tmp_path, "mix.jsonl", _alpaca_lines(
        [("q", "a")] * 4 + [(long_prompt, "answer")] * 3 + [("q", "")] + [("q", "   ")]))
    prepared = prepare(tokenizer, src, data_cfg(eval_split=0), 32, 0)
    assert len(prepared.train) == 4 and prepared.truncated == 3
    assert prepared.dropped == {"truncated_away": 3, "empty_response": 2}
    notes = " | ".join(prepared.notes)
    assert ("3 of 9 example(s) have no trainable tokens after truncation to max_seq_length=32 and were dropped "
            f"(e.g. {src}: line 5, {src}: line 6, {src}: line 7)") in notes
    assert f"2 of 9 example(s) have an empty response (nothing to learn) and were dropped (e.g. {src}: line 8" in notes
    kept = prepare(tokenizer, src, data_cfg(eval_split=0, train_on_prompt=True), 32, 0)
    assert len(kept.train) == 9 and kept.dropped == {}  # the prompt itself is a target then


def test_a_partly_truncated_response_is_kept(tokenizer, tmp_path) -> None:
    src = write(tmp_path, "p.jsonl", _alpaca_lines([("q", "word " * 100)]))
    prepared = prepare(tokenizer, src, data_cfg(eval_split=0), 32, 0)
    assert prepared.truncated == 1 and prepared.dropped == {} and len(prepared.train[0].input_ids) == 32


def test_run_is_refused_when_no_example_is_left(tokenizer, tmp_path) -> None:
    src = write(tmp_path, "none.jsonl", _alpaca_lines([("word " * 100, "x")] * 2 + [("q", "")]))
    with pytest.raises(DataError) as info:
        prepare(tokenizer, src, data_cfg(eval_split=0), 32, 0)
    assert (f"{src}: none of the 3 example(s) has trainable tokens: 2 truncated away at max_seq_length=32, "
            "1 with an empty response") in info.value.message
    assert "max_seq_length" in info.value.hint and "train_on_prompt" in info.value.hint
    assert "response fields" in info.value.hint


def test_eval_file_is_checked_too(tokenizer, tmp_path) -> None:
    src = write(tmp_path, "train.jsonl", _alpaca_lines([("q", "a")] * 3))
    bad_eval = write(tmp_path, "eval.jsonl", _alpaca_lines([("q", "")] * 2))
    with pytest.raises(DataError, match="eval.jsonl: none of the 2 example"):
        prepare(tokenizer, src, data_cfg(), 32, 0, bad_eval)
    good_eval = write(tmp_path, "eval2.jsonl", _alpaca_lines([("q", "a"), ("q", "")]))
    prepared = prepare(tokenizer, src, data_cfg(), 32, 0, good_eval)
    assert len(prepared.eval) == 1 and any(n.startswith("eval data: 1 of 2") for n in prepared.notes)


def test_cache_key_follows_format_and_chat_template(tokenizer, tmp_path) -> None:
    import copy

    from engine.data_cache import cache_key, cached_prepare

    rows = [{"instruction": f"q{i}", "output": f"a{i}", "text": f"t{i}"} for i in range(4)]
    src = write(tmp_path, "both.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    auto, as_text = make_config("lora"), make_config("lora", data={"format": "text"})
    cache = tmp_path / "cache"
    first, second = cached_prepare(cache, tokenizer, src, auto, None), cached_prepare(cache, tokenizer, src, as_text, None)
    assert (first.format, second.format) == ("alpaca", "text") and len(list(cache.glob("*.json"))) == 2
    other = copy.deepcopy(tokenizer)
    other.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert cache_key(other, src, auto, None) != cache_key(tokenizer, src, auto, None)


def test_cache_round_trips_notes_and_dropped_counts(tokenizer, tmp_path) -> None:
    from engine.data_cache import cached_prepare

    src = write(tmp_path, "d.jsonl", _alpaca_lines([("q", "a")] * 3 + [("q", "")]))
    cfg = make_config("lora", data={"eval_split": 0})
    first = cached_prepare(tmp_path / "c", tokenizer, src, cfg, None)
    again = cached_prepare(tmp_path / "c", tokenizer, src, cfg, None)
    assert again == first and again.dropped == {"empty_response": 1} and "empty response" in again.notes[0]
