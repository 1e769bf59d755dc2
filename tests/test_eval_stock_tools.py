"""What a user takes away behaves the same in stock tools: the saved tokenizer adds the BOS training adds (plain
text and chat template), `pipeline` on a merged export answers as `lf-tui generate`, and lm-eval's own
`simple_evaluate` on a local task scores a merged export as `lf-tui eval` does (acc and each choice's
log-likelihood, contexts ending in whitespace included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.builtin_model import ASSETS
from engine.data import ALPACA_PROMPT, prompt_ids, tokenize_sample
from engine.data_files import Record
from engine.data_formats import to_sample
from engine.generate import format_prompt
from engine.models import load_tokenizer
from engine.run_store import RunDir, RunStore
from engine.tokenizer_bos import add_bos_as_training_does, expects_bos
from tests.conftest import LEARNABLE, make_config, train

CHAT = [{"role": "user", "content": "Say the greeting."}, {"role": "assistant", "content": "Hello there, friend."}]
PROMPTS = ["Say the greeting.", "Name a colour.", "What is two and two?"]


def ids_of(encoded: Any) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def test_the_saved_tokenizer_adds_the_bos_training_adds(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = load_tokenizer(make_config("lora"))
    tokenizer.save_pretrained(str(tmp_path / "tok"))
    saved = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))  # what an export holds, loaded by stock code
    text = ALPACA_PROMPT.format(instruction=PROMPTS[0], input_block="")
    assert ids_of(saved(text)) == prompt_ids(tokenizer, text)  # pipeline(text) and lm-eval's default encoding
    assert ids_of(saved(text)).count(saved.bos_token_id) == 1 and saved(text)["input_ids"][0] == saved.bos_token_id
    # a chat: apply_chat_template(tokenize=True) adds no special tokens, so the template renders the BOS, once
    stock_prompt = ids_of(saved.apply_chat_template(CHAT[:1], tokenize=True, add_generation_prompt=True))
    assert stock_prompt == prompt_ids(tokenizer, format_prompt(tokenizer, CHAT[0]["content"], "chat"))
    assert stock_prompt.count(saved.bos_token_id) == 1
    trained = tokenize_sample(tokenizer, to_sample(Record({"messages": CHAT}), "chat", "text"), False).input_ids
    assert trained == ids_of(saved.apply_chat_template(CHAT, tokenize=True))  # the whole conversation as trained


def test_a_gpt2_like_tokenizer_is_left_as_it_is() -> None:
    """One <|endoftext|> for BOS and EOS (GPT-2, GPT-NeoX) and added by nothing: training adds none, nor does the
    tokenizer; a BOS distinct from EOS is added by both."""
    from transformers import PreTrainedTokenizerFast

    shared = PreTrainedTokenizerFast(tokenizer_file=str(ASSETS / "tiny_tokenizer.json"), bos_token="</s>",
                                     eos_token="</s>", pad_token="<pad>")
    before = shared.backend_tokenizer.to_str()
    assert not expects_bos(shared) and add_bos_as_training_does(shared) == []
    assert shared.backend_tokenizer.to_str() == before
    assert prompt_ids(shared, "Hello there") == ids_of(shared("Hello there"))
    assert shared.eos_token_id not in prompt_ids(shared, "Hello there")
    distinct = PreTrainedTokenizerFast(tokenizer_file=str(ASSETS / "tiny_tokenizer.json"), bos_token="<s>",
                                       eos_token="</s>", pad_token="<pad>")
    assert expects_bos(distinct) and add_bos_as_training_does(distinct) == []
    assert ids_of(distinct("Hello there")) == prompt_ids(distinct, "Hello there") != ids_of(shared("Hello there"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, Path]:
    """A LoRA run trained on the greeting, and its merged fp32 export."""
    from engine.export import export

    root = tmp_path_factory.mktemp("stock")
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    config = make_config("lora", training={"max_steps": 10, "learning_rate": 1e-2}, data={"eval_split": 0},
                         hardware={"mixed_precision": "no"})
    run, _, code = train(RunStore(root / "runs"), config, dataset)
    assert code == 0, (run.path / "engine.log").read_text()[-3000:]
    out = Path(export(run.path, root / "merged", merged=True, dtype="fp32")["out"])
    return run, out


def test_pipeline_on_a_merged_export_answers_as_lf_tui_generate(exported: tuple[RunDir, Path]) -> None:
    from transformers import pipeline

    from engine.generate import greedy, load_trained_model

    run, out = exported
    model, tokenizer, impl, runtime = load_trained_model(run)  # as lf-tui generate loads and asks it
    pipe = pipeline("text-generation", model=str(out), device="cpu")
    answers = []
    for prompt in PROMPTS:
        text = format_prompt(tokenizer, prompt, "alpaca")
        ours = greedy(model, tokenizer, text, 12, impl, runtime)
        stock = pipe(text, max_new_tokens=12, do_sample=False, return_full_text=False)[0]["generated_text"]
        assert stock == ours, prompt
        answers.append(ours)
    assert answers[0].startswith("Hello there"), answers


def task_yaml(name: str, data: Path, delimiter: str) -> str:
    return (f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
            f"test_split: test\noutput_type: multiple_choice\ndoc_to_text: context\ndoc_to_choice: choices\n"
            f"doc_to_target: answer\ntarget_delimiter: {json.dumps(delimiter)}\n"
            "metric_list:\n  - metric: acc\n  - metric: acc_norm\n")


QUESTIONS = {  # lm-eval joins with target_delimiter; a task file, with a space unless the context ends in whitespace
    ("stock_joined", " "): [
        {"context": ALPACA_PROMPT.format(instruction="Say the greeting.", input_block="").rstrip(),
         "choices": ["Hello there, friend.", "Goodbye.", "The cat sat."], "answer": 0},
        {"context": "The sky is", "choices": ["blue", "green", "made of cheese"], "answer": 0},
        {"context": "Two and two make", "choices": ["four", "five apples"], "answer": 0}],
    ("stock_spaced", ""): [
        {"context": "Question: what colour is the sky?\nAnswer: ", "choices": ["blue", "green"], "answer": 0},
        {"context": "Complete: Hello there,  ", "choices": ["friend.", "enemy."], "answer": 0},
        {"context": ALPACA_PROMPT.format(instruction="Say the greeting.", input_block="") + "\n",
         "choices": ["Hello there, friend.", "Goodbye, see you soon."], "answer": 1}],
}


def test_lm_eval_scores_a_merged_export_as_lf_tui_eval(exported: tuple[RunDir, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from engine import lm_eval_tasks
    from engine.evaluate import evaluate

    run, out = exported
    files = []
    for (name, delimiter), questions in QUESTIONS.items():
        data = tmp_path / f"{name}.jsonl"
        data.write_text("".join(json.dumps(q) + "\n" for q in questions))
        (tmp_path / f"{name}.yaml").write_text(task_yaml(name, data, delimiter))
        files.append(str(data))
    ours = {r["task"]: r["models"]["trained"] for r in evaluate(run.path, files)["results"]}
    stock = simple_evaluate(model="hf", model_args=f"pretrained={out},dtype=float32", tasks=list(ours),
                            task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
                            log_samples=True, batch_size=4, device="cpu")
    for name, mine in ours.items():
        assert stock["results"][name]["acc,none"] == pytest.approx(mine["acc"]), name
        assert stock["results"][name]["acc_norm,none"] == pytest.approx(mine["acc_norm"]), name
        for sample in sorted(stock["samples"][name], key=lambda s: s["doc_id"]):
            theirs = [float(ll) for ll, _greedy in sample["filtered_resps"]]
            assert mine["per_question"][sample["doc_id"]]["loglik"] == pytest.approx(theirs, abs=2e-3), name
    # the same task by its lm-eval name through lf-tui eval (lm-eval scoring the run's own model): the same acc
    monkeypatch.setattr(lm_eval_tasks, "_manager", lambda: TaskManager(include_path=str(tmp_path),
                                                                         include_defaults=False))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a local task needs no hub (restored after the test)
    (named,) = evaluate(run.path, ["stock_spaced"])["results"]
    assert named["source"] == "lm-eval" and named["models"]["trained"]["count"] == 3
    assert named["models"]["trained"]["acc"] == pytest.approx(ours["stock_spaced"]["acc"])
