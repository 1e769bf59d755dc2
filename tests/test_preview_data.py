"""`lf-tui preview-data`: the examples as training tokenises them, trained flags equal to the labels training uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.batching import make_batch, pick_padding_reduction
from engine.data import IGNORE
from engine.data_cache import cached_prepare
from engine.models import load_tokenizer
from engine.preview import preview, token_pieces
from engine.run_store import RunStore
from engine.runner import load_run_config
from lf_tui.present.preview_text import CLOSE, OPEN, preview_renderables, tokens_text
from lf_tui.run_setup import create_run
from tests.conftest import make_config
from tests.test_data_chat import QWEN2
from tests.tiny_models import save_tiny_model

LF_TUI = str(Path(sys.executable).with_name("lf-tui"))
ALPACA = [{"instruction": "Name a colour.", "input": "", "output": "Blue, like the sky."},
          {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
          {"instruction": "Continue the story " + "and then " * 30, "input": "", "output": "The end."},
          {"instruction": "Give nothing.", "input": "", "output": ""},
          {"instruction": "Add 2 and 2.", "input": "", "output": "4", "system": "You are a calculator."}]
SHAREGPT = [{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi?"},
                               {"from": "gpt", "value": "Hello."}, {"from": "human", "value": "Café?"},
                               {"from": "gpt", "value": "Oui, un café."}]},
            {"conversations": [{"from": "human", "value": "Two plus two?"}, {"from": "gpt", "value": "Four."}]}]
CHAT = [{"messages": [{"role": "user", "content": f"Question {i}: what is {i} squared?"},
                      {"role": "assistant", "content": f"{i * i}."}]} for i in range(7)]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 model whose tokenizer carries Qwen2-Instruct's ChatML template."""
    from transformers import AutoTokenizer

    folder = save_tiny_model(tmp_path_factory.mktemp("qwen2") / "model", "qwen2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = QWEN2
    tokenizer.save_pretrained(folder)
    return folder


def trained_by_training(run_path: Path, store: RunStore) -> tuple[list[list[bool]], list[list[bool]], Any]:
    """Per example, which tokens carry a loss in the batches the runner builds (its config, data step and collator)."""
    run = store.resolve(run_path.name)
    cfg = load_run_config(run)
    tokenizer = load_tokenizer(cfg)
    meta = run.meta()
    data = cached_prepare(store.root / ".cache" / "tokenized", tokenizer, meta["dataset"], cfg, meta.get("eval_dataset"))
    mode = pick_padding_reduction(cfg.training.padding_reduction, "cpu")

    def flags(examples: list[Any]) -> list[list[bool]]:
        out = []
        for i, ex in enumerate(examples):
            labels = make_batch(examples, [i], mode, tokenizer.pad_token_id)["labels"][0]
            targets = (labels[1:] != IGNORE).tolist()  # the loss's causal shift: position t+1 is predicted at t
            out.append([False, *targets][:len(ex.input_ids)])
        return out

    return flags(data.train), flags(data.eval), cfg


@pytest.mark.parametrize("case", ["alpaca", "sharegpt-packing", "chat-eval-file"])
def test_preview_trained_flags_are_the_labels_training_uses(case: str, tmp_path: Path, qwen2: Path) -> None:
    store = RunStore(tmp_path / "runs")
    eval_file = None
    if case == "alpaca":  # the llama built-in, an eval split, one example truncated, one with an empty response
        dataset = write_jsonl(tmp_path / "alpaca.jsonl", ALPACA * 3)
        cfg = make_config("lora", training={"max_seq_length": 40}, data={"eval_split": 0.2})
    elif case == "sharegpt-packing":  # a non-Llama model and its ChatML template, packed batches
        dataset = write_jsonl(tmp_path / "sharegpt.json", SHAREGPT * 3)
        cfg = make_config("full_finetune", base_model=str(qwen2),
                          training={"padding_reduction": "packing", "max_seq_length": 256})
    else:
        dataset = write_jsonl(tmp_path / "chat.jsonl", CHAT)
        eval_file = write_jsonl(tmp_path / "chat_eval.jsonl", CHAT[:2])
        cfg = make_config("prefix_tuning", base_model=str(qwen2), data={"eval_path": str(eval_file)})
    run = create_run(store, cfg, str(dataset), None)
    train_flags, eval_flags, run_cfg = trained_by_training(run.path, store)
    shown = preview(run_cfg, str(dataset), 1000)
    examples = shown["examples"]
    assert [[t["trained"] for t in e["tokens"]] for e in examples if e["split"] == "train"] == train_flags
    assert [[t["trained"] for t in e["tokens"]] for e in examples if e["split"] == "eval"] == \
        (eval_flags if eval_file is None else [])
    assert shown["train_examples"] == len(train_flags) and shown["eval_examples"] == len(eval_flags)
    assert all(not any(t["trained"] for t in e["tokens"]) for e in examples if e["split"] == "dropped")
    tokenizer = load_tokenizer(run_cfg)
    for e in examples:  # the text pieces are the decoded tokens
        ids = [t["id"] for t in e["tokens"]]
        assert "".join(t["text"] for t in e["tokens"]) == tokenizer.decode(ids, skip_special_tokens=False,
                                                                            clean_up_tokenization_spaces=False)
    if case == "alpaca":
        assert shown["padding_reduction"] == "group_by_length" and shown["format"] == "alpaca"
        assert shown["records"] == 15 and shown["longer_than_max"] == 3
        assert shown["no_trained_tokens"] == {"empty_response": 3, "truncated_away": 3}
        assert [e["reason"] for e in examples if e["split"] == "dropped"][:2] == [
            "no trained token left after truncation", "an empty response"]
        trained = "".join(t["text"] for t in examples[0]["tokens"] if t["trained"])
        assert trained == "Blue, like the sky.</s>"
        assert sum(b["count"] for b in shown["lengths"]["histogram"]) == 15
    elif case == "sharegpt-packing":
        assert shown["padding_reduction"] == "packing" and shown["packing_note"]
        trained = "".join(t["text"] for t in examples[0]["tokens"] if t["trained"])
        assert trained == "Hello.<|im_end|>\nOui, un café.<|im_end|>\n"  # both assistant turns, nothing else
        assert "".join(t["text"] for t in examples[0]["tokens"]).startswith("<s><|im_start|>system\nBe brief.")
    else:
        assert shown["eval_source"] == str(eval_file) and shown["eval_examples"] == 2


def test_token_pieces_join_to_the_text_with_multibyte_characters() -> None:
    from engine.builtin_model import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    text = "Café ☕ naïve – déjà vu 日本\nnew line"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = token_pieces(tokenizer, ids)
    assert len(pieces) == len(ids) and "".join(pieces) == text
    assert "" in pieces  # a character split over byte tokens goes to the token that completes it


def test_the_text_marks_trained_tokens_in_colour_and_in_plain_text() -> None:
    tokens = [{"text": "Q: hi\n", "trained": False}, {"text": "A", "trained": True}, {"text": "!", "trained": True},
              {"text": "\n", "trained": False}]
    plain = tokens_text(tokens, plain=True).plain
    assert plain == f"Q: hi↵\n{OPEN}A!{CLOSE}↵\n"
    styled = tokens_text(tokens)
    styles = {styled.plain[span.start:span.end]: str(span.style) for span in styled.spans}
    assert "bright_white" in styles["A"] and "bright_white" in styles["!"] and styles["A"] != styles["!"]
    assert styles["Q: hi↵\n"].startswith("grey")


def lf(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([LF_TUI, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def project(tmp_path: Path, qwen2: Path) -> Path:
    """An empty working directory holding a project folder: a config whose base_model is a relative folder."""
    import shutil

    (tmp_path / "work").mkdir()
    folder = tmp_path / "work" / "proj"
    shutil.copytree(qwen2, folder / "model")
    (folder / "cfg.json").write_text(json.dumps({"method": "lora", "base_model": "./model",
                                                 "training": {"max_seq_length": 256},
                                                 "data": {"eval_split": 0}}))
    write_jsonl(folder / "data.jsonl", ALPACA)
    return tmp_path / "work"


def test_cli_preview_as_the_readme_shows(project: Path) -> None:
    proc = lf(project, "preview-data", "-c", "proj/cfg.json", "--dataset", "proj/data.jsonl", "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert f"{OPEN}Blue, like the sky.</s>{CLOSE}" in proc.stdout  # a pipe has no colours: trained runs bracketed
    assert f"{OPEN}chat</s>{CLOSE}" in proc.stdout and "### Input:↵" in proc.stdout
    assert "example 3" not in proc.stdout and "5 record(s): 4 train" in proc.stdout
    assert "warning: 1 example(s) have no trained token left" in proc.stdout  # the empty response, dropped
    data = json.loads(lf(project, "preview-data", "-c", "proj/cfg.json", "--dataset", "proj/data.jsonl",
                         "-n", "5", "--json").stdout)
    assert data["base_model"] == str((project / "proj" / "model").absolute())  # against the config's folder
    assert data["dataset"] == str((project / "proj" / "data.jsonl").resolve())  # against the working directory
    assert [e["split"] for e in data["examples"]].count("dropped") == 1
    tokens = data["examples"][4]["tokens"]
    assert "".join(t["text"] for t in tokens if t["trained"]) == "4</s>"
    assert "".join(t["text"] for t in tokens).startswith("<s>You are a calculator.\n\n### Instruction:")
    assert not list(project.glob("**/runs"))  # a preview writes no run folder


def test_all_masked_data_is_refused_naming_the_file_and_the_fix(project: Path) -> None:
    long_prompts = [{"instruction": "Read this. " * 100, "input": "", "output": "Done."}] * 3
    write_jsonl(project / "long.jsonl", long_prompts)
    proc = lf(project, "preview-data", "-c", "proj/cfg.json", "--dataset", "long.jsonl")
    assert proc.returncode == 1
    err = " ".join(proc.stderr.split())
    assert f"{(project / 'long.jsonl').resolve()}: none of the 3 example(s) has trainable tokens" in err
    assert "3 truncated away at max_seq_length=256" in err and "fix: raise training.max_seq_length" in err
    assert "Traceback" not in proc.stderr


def test_cli_errors_are_clear(project: Path) -> None:
    missing = lf(project, "preview-data", "-c", "proj/cfg.json", "--dataset", "nope.jsonl")
    assert missing.returncode == 1 and "nope.jsonl: no such dataset file" in missing.stderr
    (project / "bad.json").write_text(json.dumps({"method": "lora", "training": {"max_seq_length": 2}}))
    invalid = lf(project, "preview-data", "-c", "bad.json")
    assert invalid.returncode == 1 and "training.max_seq_length" in invalid.stderr
    assert "Traceback" not in missing.stderr + invalid.stderr


def test_the_renderables_hold_the_summary_examples_and_counts(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "a.jsonl", ALPACA)
    result = preview(make_config("lora", training={"max_seq_length": 40}), str(dataset), 2)
    text = "\n".join(getattr(r, "plain", "") for r in preview_renderables(result, plain=True))
    assert "example 1" in text and "example 2" in text and "example 3" not in text
    assert "1 of 5 example(s) longer than max_seq_length=40 is truncated" in text
    assert "warning: 2 example(s) have no trained token left" in text and "1 truncated away, 1 with an empty" in text
