"""The rank budget really moves: a run through the engine prunes from init_r to target_r per layer, the step events
and the summary show it over time, and the saved adapter keeps exactly the target budget."""

from __future__ import annotations

import json

import pytest

from engine.protocol import Step
from engine.run_store import SUMMARY
from lf_tui.present import run_text
from methods.adalora.tests.support import BUILTIN, SCHEDULE, STEPS, adalora_config
from tests.test_architectures import run_in_process, saved_tensors


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_ranks_are_pruned_to_the_target_budget(arch: str, store, learnable_dataset, gpt2_folder) -> None:
    from engine.generate import generate

    cfg = adalora_config(BUILTIN if arch == "llama" else str(gpt2_folder))
    run, events = run_in_process(store, cfg, learnable_dataset)
    errors = [e for e in events if e.type == "error"]
    assert not errors and events[-1].type == "finished" and events[-1].status == "completed", errors
    adapter = json.loads((run.weights_dir / "adapter_config.json").read_text())
    pattern = adapter["rank_pattern"]
    layers = len(pattern)
    assert layers == (8 if arch == "llama" else 2)  # "auto": q_proj + v_proj in 4 layers; GPT-2's c_attn in 2
    initial, target = SCHEDULE["init_r"] * layers, SCHEDULE["target_r"] * layers

    budget = [e.method_metrics["rank_budget"] for e in events if isinstance(e, Step)]
    assert len(budget) == STEPS
    assert budget[:2] == [initial, initial]  # the warm-up: 2 steps at init_r
    assert all(a >= b for a, b in zip(budget, budget[1:])) and initial > budget[3] > target  # shrinking
    assert budget[6:] == [target] * 4  # the final allocation at step 7, then the final ranks
    assert any("AdaLoRA schedule over 10 steps" in e.message and f"{initial} -> {target}" in e.message
               for e in events if e.type == "log")

    summary = json.loads((run.path / SUMMARY).read_text())
    history = summary["method_metrics"]["rank_budget"]
    assert history[0] == [1, initial] and history[-1][1] == target and len(history) > 2  # a point per change
    assert history[-1][0] <= 7  # the budget reaches the target by the final allocation
    own = summary["method"]
    assert (own["initial_rank_budget"], own["target_rank_budget"], own["final_rank_budget"]) == (initial, target, target)
    assert len(own["layer_ranks"]) == layers and sum(own["layer_ranks"].values()) == target
    assert all(0 <= r <= SCHEDULE["init_r"] for r in own["layer_ranks"].values())
    rows = dict(run_text.summary_rows(summary))
    shown = rows["rank budget"]
    assert shown.startswith(f"{initial} (step 1) → ") and shown.endswith(f"{target} (step {history[-1][0]})")
    assert rows["final rank budget"] == str(target)

    # the saved adapter: the pattern keeps exactly the target budget, the tensors are trimmed to it
    assert sum(sum(kept) for kept in pattern.values()) == target
    assert all(len(kept) == SCHEDULE["init_r"] for kept in pattern.values())
    singular = {k: t for k, t in saved_tensors(run.weights_dir).items() if "lora_E" in k}
    assert len(singular) == layers and sum(t.shape[0] for t in singular.values()) == target
    assert all(bool((t != 0).all()) for t in singular.values())
    assert isinstance(generate(run, "Say the greeting.", max_new_tokens=3)["completion"], str)
