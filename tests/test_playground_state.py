"""The Playground's plain state: settings parsed with clear errors, events folded into streamed answers, groups by
base model, the history of prompts, load failures and a serving process that died."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.run_store import RunInfo
from lf_tui.playground_state import Playground, SettingsError, parse_settings, settings_line, short_label
from lf_tui.present.playground_text import group_heading, timings, title


def test_settings_parse_any_subset_and_name_what_is_wrong() -> None:
    assert parse_settings("") == {"max_new_tokens": 32, "temperature": 0.0, "top_p": 1.0, "seed": 0}
    assert parse_settings("temp=0.7, top-p=0.9 tokens=8 seed=3") == {
        "max_new_tokens": 8, "temperature": 0.7, "top_p": 0.9, "seed": 3}
    assert parse_settings(settings_line(parse_settings("tokens=5 top_p=0.5"))) == parse_settings("tokens=5 top_p=0.5")
    for bad, said in (("tokens=lots", "whole number"), ("tokens=0", "1 to 4096"), ("temperature=-1", "0 (greedy)"),
                      ("top_p=0", "(0, 1]"), ("beam=4", "name among"), ("tokens", "name=value")):
        with pytest.raises(SettingsError, match=said.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            parse_settings(bad)


def test_short_labels_keep_what_tells_runs_apart() -> None:
    assert short_label("20260101-120000-lora-aaaa", "lora") == "lora 120000-aaaa"
    assert short_label("20260101-120500-full_finetune-bbbb", "full_finetune") == "full_finetune 120500-bbbb"
    assert short_label("my-fused-run", "lora") == "lora my-fused-run"
    assert short_label("20261202-042251-fused-lora-1a2b", "lora") == "fused-lora 042251-1a2b"
    assert short_label("lora-x", "lora") == "lora-x"


def _runs(tmp_path: Path) -> list[RunInfo]:
    infos = []
    for run_id, base, trained in (("r1", "builtin:tiny-llama", True), ("r2", "builtin:tiny-llama", True),
                                  ("r3", "/models/gpt2", True), ("r4", "builtin:tiny-llama", False)):
        path = tmp_path / run_id
        (path / ("weights" if trained else "logs")).mkdir(parents=True)
        infos.append(RunInfo(run_id, path, status="completed", method="lora", base_model=base))
    (tmp_path / "r5" / "checkpoints" / "step-2" / "weights").mkdir(parents=True)  # a checkpoint answers too
    infos.append(RunInfo("r5", tmp_path / "r5", status="cancelled", method="ia3", base_model="builtin:tiny-llama"))
    return infos


def test_answers_stream_in_grouped_by_base_and_history_keeps_the_latest_first(tmp_path: Path) -> None:
    state = Playground()
    state.set_runs(_runs(tmp_path))
    assert sorted(state.targets) == ["r1", "r2", "r3", "r5"]  # r4 has no trained weights
    assert state.choose(["r3", "r1", "r4", "r1"]) == ["r4"]
    assert state.groups() == [("/models/gpt2", ["r3"]), ("builtin:tiny-llama", ["r1"])]
    assert "2 runs + base on 2 base models" in title(state)
    assert "a base of its own" in group_heading(state, "/models/gpt2")
    state.apply({"type": "ready", "protocol": 1})
    request = state.ask("hello", parse_settings("tokens=4"))
    assert request == {"type": "generate", "prompt": "hello", "targets": ["r3", "r1", "base"], "stream": True,
                       "max_new_tokens": 4, "temperature": 0.0, "top_p": 1.0, "seed": 0}
    assert sorted(state.answers) == ["base@/models/gpt2", "base@builtin:tiny-llama", "r1", "r3"]
    assert state.to_load() == [str(tmp_path / "r3"), str(tmp_path / "r1")]
    state.apply({"type": "loaded", "run": "r3", "load_s": 0.5})
    state.apply({"type": "error", "run": "r1", "kind": "run", "error": "no weights", "hint": "train it"})
    assert state.to_load() == []
    state.apply({"type": "partial", "target": "r3", "text": "Hel", "new_tokens": 1})
    assert state.answers["r3"].text == "Hel" and not state.answers["r3"].done
    assert timings(state.answers["r3"]) == "generating… 1 tokens"
    state.apply({"type": "answer", "target": "r3", "text": "Hello", "new_tokens": 2, "first_token_s": 0.012,
                 "tokens_per_s": 40.0, "swap_s": 0.0004})
    assert timings(state.answers["r3"]) == "first token 12.0 ms · 40.0 tok/s · 2 tokens · swap 0.4 ms"
    state.apply({"type": "answer", "target": "base", "base_model": "/models/gpt2", "text": "Hi", "new_tokens": 1,
                 "first_token_s": 1.5, "tokens_per_s": 1.0, "swap_s": 0.0})
    assert state.answers["base@/models/gpt2"].text == "Hi"
    assert "swap" not in timings(state.answers["base@/models/gpt2"]) and "1.50 s" in timings(
        state.answers["base@/models/gpt2"])
    state.apply({"type": "answer", "target": "r1", "error": "run 'r1' is not loaded", "kind": "request",
                 "hint": "load it"})
    assert state.answers["r1"].error == "request error: run 'r1' is not loaded" and state.answers["r1"].done
    state.apply({"type": "done", "request": "generate"})
    assert not state.busy and state.status == "ready"
    # asking again: a failed load is remembered (its card says why at once), the prompt moves to the front
    state.ask("second", parse_settings(""))
    again = state.ask("hello", parse_settings(""))
    assert state.history == ["hello", "second"]
    assert again["targets"] == ["r3", "base"] and state.answers["r1"].error == "run error: no weights"


def test_a_serving_process_that_dies_says_why(tmp_path: Path) -> None:
    state = Playground()
    state.set_runs(_runs(tmp_path))
    state.choose(["r1"])
    state.ask("x", parse_settings(""))
    state.apply({"type": "exited", "returncode": 1, "stderr": "Traceback...\nMemoryError: out of memory\n"})
    assert not state.ready and not state.busy
    assert state.status == "the serving engine exited (code 1): MemoryError: out of memory"
