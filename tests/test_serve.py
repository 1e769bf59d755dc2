"""`python -m engine.serve`: one process, the base loaded once, many runs' adapters switched per request; and
`lf-tui generate --run A --run B --base` on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.launcher import PROJECT_ROOT, engine_env
from engine.run_store import RunDir, RunStore
from tests.conftest import make_config, train
from tests.tiny_models import save_tiny_model

PROMPT = "Say the greeting."
TRAINING = {"max_steps": 4, "learning_rate": 1e-2}


class Serving:
    """A `python -m engine.serve` subprocess, spoken to a request at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=engine_env(),
                                     cwd=str(PROJECT_ROOT))
        self.ready = self._next()

    def _next(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the serving engine exited"
        return json.loads(line)

    def ask(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        events: list[dict[str, Any]] = []
        while True:
            event = self._next()
            if event["type"] == "done":
                return events + [event]
            events.append(event)

    def generate(self, targets: list[str], **settings: Any) -> dict[str, dict[str, Any]]:
        events = self.ask({"type": "generate", "prompt": PROMPT, "targets": targets, **settings})
        answers = [e for e in events if e["type"] == "answer"]
        assert len(answers) == len(targets), answers
        return {a["target"]: a for a in answers}

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"type": "quit"}) + "\n")
        self.proc.stdin.flush()
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunDir]:
    """Two LoRA runs (different learning rates, so different adapters) and an IA3 run on the built-in model."""
    from tests.conftest import LEARNABLE

    root = tmp_path_factory.mktemp("serve")
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    store = RunStore(root / "runs")
    made = {}
    for name, method, lr in (("lora_a", "lora", 1e-2), ("lora_b", "lora", 3e-2), ("ia3", "ia3", 3e-2)):
        run, _, code = train(store, make_config(method, training={**TRAINING, "learning_rate": lr}), dataset)
        assert code == 0
        made[name] = run
    return made


def alone(run: RunDir) -> str:
    from engine.generate import generate

    return str(generate(run, PROMPT)["completion"])


def test_one_process_serves_lora_and_ia3_runs_on_one_base(runs: dict[str, RunDir]) -> None:
    from engine.generate import generate

    server = Serving()
    try:
        assert server.ready["type"] == "ready" and server.ready["protocol"] == 1
        events = server.ask({"type": "load", "runs": [str(r.path) for r in runs.values()]})
        loaded = [e for e in events if e["type"] == "loaded"]
        assert len(loaded) == 3, events
        assert events[-1]["bases_loaded"] == 1 and events[-1]["models_loaded"] == 0
        assert {e["kind"] for e in loaded} == {"peft:LORA", "peft:IA3"}
        ids = [r.run_id for r in runs.values()]
        first = server.generate(ids + ["base"])
        expected = {r.run_id: alone(r) for r in runs.values()}
        expected["base"] = generate(runs["lora_a"], PROMPT, compare_base=True)["base_completion"]
        assert {t: a["text"] for t, a in first.items()} == expected
        assert len(set(expected.values())) > 1  # the adapters differ from one another (or from the base)
        for answer in first.values():
            assert answer["new_tokens"] > 0 and answer["first_token_s"] > 0 and answer["tokens_per_s"] > 0
            assert answer["swap_s"] >= 0
        # switching back and forth gives the same answers
        again = server.generate(list(reversed(ids)) + ["base"] + ids)
        assert {t: a["text"] for t, a in again.items()} == expected
        # seeded sampling: the same seed, the same text
        sampled = [server.generate([ids[0]], temperature=1.0, top_p=0.9, seed=7)[ids[0]]["text"] for _ in range(2)]
        assert sampled[0] == sampled[1]
        server.generate([ids[0]], temperature=1.0, top_p=0.9, seed=8)  # another seed: an answer (maybe another)
        # streamed: partial events before each answer, each the answer so far, the last one the whole answer
        streamed = server.ask({"type": "generate", "prompt": PROMPT, "targets": [ids[0], "base"], "stream": True,
                               "partial_every_s": 0, "id": 5})
        assert all(e.get("id") == 5 for e in streamed)
        for target in (ids[0], "base"):
            mine = [e for e in streamed if e.get("target") == target]
            partials, answer = mine[:-1], mine[-1]
            assert answer["type"] == "answer" and {e["type"] for e in partials} == {"partial"}
            assert answer["text"] == expected[target]
            assert partials[-1]["text"] == answer["text"] and partials[-1]["new_tokens"] == answer["new_tokens"]
            assert [p["new_tokens"] for p in partials] == list(range(1, answer["new_tokens"] + 1))
        order = [e.get("target") for e in streamed if e["type"] == "answer"]
        assert order == [ids[0], "base"]
        # a run not loaded, and a second load of the same run
        missing = server.generate(["nope"])["nope"]
        assert missing["kind"] == "request" and "not loaded" in missing["error"]
        reload = server.ask({"type": "load", "runs": [str(runs["lora_a"].path)]})
        assert reload[0]["reused"] is True and reload[-1]["bases_loaded"] == 1
        assert server.proc.stdin is not None
        server.proc.stdin.write('{"type": "bogus"}\n')
        server.proc.stdin.flush()
        assert server._next()["type"] == "error"  # an unknown request: one error event, the server carries on
    finally:
        assert server.close() == 0


def test_a_run_on_another_base_gets_a_base_of_its_own(runs: dict[str, RunDir], tmp_path: Path,
                                                       learnable_dataset: Path) -> None:
    save_tiny_model(tmp_path / "gpt2", "gpt2")
    cfg = make_config("lora", base_model=str(tmp_path / "gpt2"), hardware={"mixed_precision": "no"},
                      training=TRAINING)
    other, _, code = train(RunStore(tmp_path / "runs"), cfg, learnable_dataset)
    assert code == 0
    server = Serving()
    try:
        events = server.ask({"type": "load", "runs": [str(runs["lora_a"].path), str(other.path),
                                                      str(tmp_path / "missing")]})
        assert [e["type"] for e in events] == ["loaded", "loaded", "error", "done"]
        assert events[1]["base_model"] == str(tmp_path / "gpt2") and events[1]["bases_loaded"] == 2
        assert events[2]["run"] == "missing" and "no such run folder" in events[2]["error"]
        answers = server.generate([other.run_id, runs["lora_a"].run_id])
        assert answers[other.run_id]["text"] == alone(other)
        assert answers[runs["lora_a"].run_id]["text"] == alone(runs["lora_a"])
    finally:
        assert server.close() == 0


def lf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}  # ./runs, as a user in that folder
    return subprocess.run([sys.executable, "-m", "lf_tui", *args], capture_output=True, text=True, cwd=str(cwd),
                          env=env, timeout=300, stdin=subprocess.DEVNULL)


def test_cli_generate_several_runs_and_the_base(runs: dict[str, RunDir]) -> None:
    a, b = runs["lora_a"], runs["ia3"]
    folder = a.path.parent.parent  # holds ./runs
    proc = lf("generate", "--run", a.run_id, "--run", b.run_id, "--base", "--prompt", PROMPT, "--json", cwd=folder)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    answers = json.loads(proc.stdout)
    assert [x["target"] for x in answers] == [a.run_id, b.run_id, "base"]
    assert answers[0]["text"] == alone(a) and answers[1]["text"] == alone(b)
    assert all(x["first_token_s"] > 0 and x["tokens_per_s"] > 0 and "swap_s" in x for x in answers)
    table = lf("generate", "--run", a.run_id, "--compare-base", "--prompt", PROMPT, cwd=folder)
    assert table.returncode == 0 and a.run_id in table.stdout and "tokens/s" in table.stdout
    assert "Traceback" not in table.stderr
    single = json.loads(lf("generate", "--run", a.run_id, "--prompt", PROMPT, "--json", cwd=folder).stdout)
    assert single == {"prompt": PROMPT, "completion": alone(a), "base_completion": None}
    bad = lf("generate", "--run", a.run_id, "--run", "nope", "--prompt", PROMPT, cwd=folder)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_the_base_answers_once_per_base_model() -> None:
    """A base loaded in another dtype only for a full fine-tune (fp32 master weights on a GPU) is not asked again."""
    from engine.serve import Base, Server

    def base(model: str, dtype: str, loader: str = "default", adapters: int = 0) -> Base:
        return Base((model, False, "cuda", dtype, loader), model, loader, None, None, None, "alpaca",
                    adapters=adapters)

    server = Server()
    for made in (base("m", "float32"), base("m", "bfloat16", adapters=2), base("m", "float32", "qlora", 1),
                 base("other", "bfloat16", adapters=1)):
        server.bases[made.key] = made
    assert [(b.base_model, b.key[3], b.loader) for b in server.base_targets()] == [
        ("m", "bfloat16", "default"), ("other", "bfloat16", "default")]
    only_4bit = Server()
    only_4bit.bases[("m", False, "cpu", "float32", "qlora")] = base("m", "float32", "qlora", 1)
    assert [b.loader for b in only_4bit.base_targets()] == ["qlora"]
