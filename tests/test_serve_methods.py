"""One `python -m engine.serve` process serves a run of every method of the catalogue (LoRA and its DoRA, rsLoRA and
PiSSA variants, QLoRA, AdaLoRA, IA3, prefix tuning, bottleneck adapters, full fine-tuning) on one base, each answer
equal to the one-run path's (engine.generate.generate), on the built-in Llama and on a locally built Qwen2."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.run_store import RunDir, RunStore
from tests.conftest import LEARNABLE, make_config, start_run
from tests.test_serve import PROMPT, Serving
from tests.tiny_models import save_tiny_model

STEPS = 3
PARALLEL = 3  # runs trained at once
TOKENS = 12  # new tokens per answer (greedy)
# name -> (method, method_specific, learning rate): rates high enough that 3 steps move every answer off the base's
BUILTIN: dict[str, tuple[str, dict[str, Any], float]] = {
    "lora": ("lora", {}, 3e-2),
    "dora": ("lora", {"use_dora": True}, 3e-2),
    "rslora": ("lora", {"use_rslora": True}, 1e-2),
    "pissa": ("lora", {"init_lora_weights": "pissa", "r": 8}, 1e-2),
    "qlora": ("qlora", {"r": 8, "lora_alpha": 16}, 3e-2),
    "adalora": ("adalora", {"target_modules": "all-linear", "init_r": 8, "target_r": 4, "deltaT": 1}, 3e-2),
    "ia3": ("ia3", {}, 5e-2),
    "prefix": ("prefix_tuning", {"num_virtual_tokens": 8}, 5e-2),
    "adapters": ("adapters", {}, 3e-2),
    "full": ("full_finetune", {}, 3e-3),
}
KINDS = {"lora": "peft:LORA", "dora": "peft:LORA", "rslora": "peft:LORA", "pissa": "peft:LORA", "qlora": "peft:LORA",
         "adalora": "peft:ADALORA", "ia3": "peft:IA3", "prefix": "peft:PREFIX_TUNING", "adapters": "bottleneck",
         "full": "full model"}
QWEN2 = {"lora": BUILTIN["lora"], "adapters": BUILTIN["adapters"], "full": BUILTIN["full"]}


def train_all(root: Path, table: dict[str, tuple[str, dict[str, Any], float]], **extra: Any) -> dict[str, RunDir]:
    """One short run per entry, PARALLEL at a time (each engine mostly waits on its start-up)."""
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    store, made = RunStore(root / "runs"), {}
    names = list(table)
    for first in range(0, len(names), PARALLEL):
        started = []
        for name in names[first:first + PARALLEL]:
            method, specific, lr = table[name]
            cfg = make_config(method, training={"max_steps": STEPS, "learning_rate": lr}, method_specific=specific,
                              **extra)
            started.append((name, *start_run(store, cfg, dataset)))
        for name, run, proc in started:
            watchdog = threading.Timer(300, proc.popen.kill)  # a run that hangs is killed: the suite never stalls
            watchdog.start()
            try:
                list(proc.events())
                assert proc.wait(timeout=300) == 0, (run.path / "engine.log").read_text()[-3000:]
            finally:
                watchdog.cancel()
            made[name] = run
    return made


@pytest.fixture(scope="module")
def builtin_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunDir]:
    return train_all(tmp_path_factory.mktemp("serve-methods"), BUILTIN, hardware={"mixed_precision": "no"})


@pytest.fixture(scope="module")
def qwen2_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunDir]:
    root = tmp_path_factory.mktemp("serve-qwen2")
    base = save_tiny_model(root / "qwen2", "qwen2")
    return train_all(root, QWEN2, base_model=str(base), hardware={"mixed_precision": "no"})


def alone(run: RunDir, compare_base: bool = False) -> dict[str, Any]:
    from engine.generate import generate

    return generate(run, PROMPT, max_new_tokens=TOKENS, compare_base=compare_base)


def serve_and_check(runs: dict[str, RunDir], kinds: dict[str, str], own_bases: set[str]) -> dict[str, Any]:
    """Load every run into one server and check each answer against the one-run path; returns what it saw."""
    ids = {name: run.run_id for name, run in runs.items()}
    expected = {ids[name]: alone(run)["completion"] for name, run in runs.items()}
    plain = next(name for name in runs if name not in own_bases and kinds[name] != "full model")
    expected["base"] = alone(runs[plain], compare_base=True)["base_completion"]
    server = Serving()
    try:
        # the plain base's answer with one LoRA run loaded, then every run: the base must answer the same after
        # bottleneck adapters, prefixes and PEFT layers went into trees that share its weights
        server.ask({"type": "load", "runs": [str(runs[plain].path)]})
        base_first = server.generate(["base"], max_new_tokens=TOKENS)["base"]["text"]
        events = server.ask({"type": "load", "runs": [str(r.path) for r in runs.values()]})
        loaded = {e["run"]: e for e in events if e["type"] in ("loaded", "error")}
        assert set(loaded) == set(ids.values()), events
        for name, run_id in ids.items():
            assert loaded[run_id]["type"] == "loaded" and loaded[run_id]["kind"] == kinds[name], (name, loaded[run_id])
            assert loaded[run_id]["separate_model"] is (kinds[name] == "full model")
            assert loaded[run_id]["loader"] == ((runs[name].config() or {})["method_name"] if name in own_bases else "default")
        done = events[-1]
        # the base once, plus one for each method that loads its base itself (QLoRA's 4-bit loader)
        assert done["bases_loaded"] == 1 + len(own_bases), done
        assert done["models_loaded"] == sum(kinds[name] == "full model" for name in runs)
        targets = list(ids.values())
        first = server.generate(["base", *targets, "base"], max_new_tokens=TOKENS)
        assert {t: a["text"] for t, a in first.items()} == expected, {t: a.get("error") for t, a in first.items()}
        assert base_first == expected["base"]
        for name, run_id in ids.items():  # every run trained away from the base
            assert expected[run_id] != expected["base"], name
        for answer in first.values():
            assert answer["new_tokens"] > 0 and answer["first_token_s"] > 0 and answer["tokens_per_s"] > 0
            assert answer["swap_s"] >= 0 and answer["total_s"] > 0
        # back and forth, each target asked twice in a row and interleaved with the others
        order = [*reversed(targets), "base", *targets[::2], *targets[1::2], targets[0], targets[0], "base"]
        events = server.ask({"type": "generate", "prompt": PROMPT, "targets": order, "max_new_tokens": TOKENS})
        answers = [e for e in events if e["type"] == "answer"]
        assert [a["target"] for a in answers] == order
        assert all(a["text"] == expected[a["target"]] for a in answers), \
            [(a["target"], a["text"], expected[a["target"]]) for a in answers if a["text"] != expected[a["target"]]]
        streamed = server.ask({"type": "generate", "prompt": PROMPT, "targets": targets, "stream": True,
                               "partial_every_s": 0, "max_new_tokens": TOKENS})
        finals = [e for e in streamed if e["type"] == "answer"]
        assert [a["text"] for a in finals] == [expected[t] for t in targets]
        for target in targets:
            partials = [e for e in streamed if e["type"] == "partial" and e["target"] == target]
            assert partials and partials[-1]["text"] == expected[target]
        return {"loaded": loaded, "done": done}
    finally:
        assert server.close() == 0


def test_one_process_serves_every_method_on_the_builtin_model(builtin_runs: dict[str, RunDir]) -> None:
    seen = serve_and_check(builtin_runs, KINDS, own_bases={"qlora"})
    qlora = seen["loaded"][builtin_runs["qlora"].run_id]
    assert qlora["loader"] == "qlora" and qlora["kind"] == "peft:LORA"
    assert seen["done"]["models_loaded"] == 1  # the full fine-tune, as a model of its own


def test_one_process_serves_lora_adapters_and_a_full_finetune_on_qwen2(qwen2_runs: dict[str, RunDir]) -> None:
    seen = serve_and_check(qwen2_runs, {n: KINDS[n] for n in QWEN2}, own_bases=set())
    assert {e["base_model"] for e in seen["loaded"].values()} == {(qwen2_runs["lora"].config() or {})["base_model"]}
