"""AdaLoRA's settings: a target rank at or above the start and a schedule with no room to prune are clear config
errors (at validation and in the engine), the fractions become steps of the run, the settings reach PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import EngineError
from methods.adalora import implementation as adalora
from methods.adalora.spec import schedule_steps
from methods.validation import validate_config


def _errors(**method_specific) -> list:
    doc = {"method": "adalora", "training": {"max_steps": 20}, "method_specific": method_specific}
    return validate_config(doc).report.errors


@pytest.mark.parametrize("init_r,target_r", [(4, 8), (8, 8)])
def test_target_rank_must_be_below_the_initial_rank(init_r: int, target_r: int) -> None:
    errors = _errors(init_r=init_r, target_r=target_r)
    assert [e.path for e in errors] == ["method_specific.target_r"]
    assert f"target_r ({target_r}) must be below init_r ({init_r})" in errors[0].message and "init_r" in errors[0].hint


def test_a_schedule_that_leaves_no_pruning_steps_is_an_error() -> None:
    errors = _errors(tinit_fraction=0.5, tfinal_fraction=0.5)
    assert [e.path for e in errors] == ["method_specific.tfinal_fraction"]
    assert "tinit_fraction (0.5) + tfinal_fraction (0.5)" in errors[0].message and "pruning" in errors[0].message
    assert "below 1" in errors[0].hint
    assert not _errors(tinit_fraction=0.45, tfinal_fraction=0.5)  # one step of pruning is enough
    assert validate_config({"method": "adalora", "method_specific": {"tfinal_fraction": 0.95}}).report.errors


def test_the_fractions_become_steps_that_always_leave_room_to_prune() -> None:
    assert schedule_steps(100, 0.1, 0.2) == (10, 20)
    for total in range(1, 60):
        for tinit, tfinal in [(0.1, 0.2), (0.45, 0.5), (0.0, 0.99), (0.7, 0.0)]:
            a, b = schedule_steps(total, tinit, tfinal)
            assert a + b < total, (total, tinit, tfinal)


def test_the_engine_refuses_a_bad_config_as_a_config_error(tmp_path: Path) -> None:
    from engine.models import resolve_runtime
    from engine.run_store import RunDir
    from engine.runner import EngineContext, load_run_config
    from tests.conftest import make_config

    # a run whose config.json was edited after validation: the engine validates it again, with the method's rules
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    good = make_config("adalora").model_dump(mode="json")
    (run.path / "config.json").write_text(json.dumps({**good, "method_specific": {"tinit_fraction": 0.6,
                                                                                  "tfinal_fraction": 0.4}}))
    with pytest.raises(EngineError) as info:
        load_run_config(run)
    assert info.value.kind == "config" and "tinit_fraction" in info.value.message

    # and apply() itself, handed settings no validation saw
    cfg = make_config("adalora")
    runtime = resolve_runtime(cfg)
    for bad in ({"target_r": 12}, {"tinit_fraction": 0.5, "tfinal_fraction": 0.5}):
        broken = cfg.model_copy(update={"method_specific": cfg.method_specific.model_copy(update=bad)})
        ctx = EngineContext(broken, runtime, lambda level, message: None, total_steps=20)
        with pytest.raises(EngineError) as info:
            adalora.apply(ctx.load_base_model(), broken, ctx)
        assert info.value.kind == "config" and next(iter(bad)) in info.value.message and info.value.hint


def test_the_settings_reach_peft_and_the_schedule_is_in_steps() -> None:
    from engine.models import resolve_runtime
    from engine.planning import estimate
    from engine.runner import build_model
    from tests.conftest import make_config

    cfg = make_config("adalora", hardware={"mixed_precision": "no"},
                      method_specific={"init_r": 10, "target_r": 3, "deltaT": 5, "beta1": 0.8, "beta2": 0.9,
                                       "orth_reg_weight": 0.2, "lora_alpha": 20, "lora_dropout": 0.1,
                                       "target_modules": ["q_proj", "k_proj"], "tinit_fraction": 0.25,
                                       "tfinal_fraction": 0.1})
    lines: list[str] = []
    model, _ = build_model(cfg, resolve_runtime(cfg), lambda level, message: lines.append(message), total_steps=40)
    config = adalora.peft_config(model)
    assert (config.init_r, config.target_r, config.deltaT, config.beta1, config.beta2) == (10, 3, 5, 0.8, 0.9)
    assert (config.orth_reg_weight, config.lora_alpha, config.lora_dropout) == (0.2, 20, 0.1)
    assert (config.total_step, config.tinit, config.tfinal) == (40, 10, 4)
    assert config.target_modules == {"q_proj", "k_proj"}
    assert adalora.initial_budget(model) == 10 * 8 and adalora.target_budget(model) == 3 * 8
    assert any("final allocation at step 36" in line and "80 -> 24 over 8 layers" in line for line in lines), lines
    trainable = {n.rsplit(".", 2)[-2] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A", "lora_B", "lora_E"}
    # the memory planner's count (from config.json alone) is the built model's
    plan = estimate(cfg, "cpu")[0]
    assert plan.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert any("rank allocator keeps 3 more fp32 copies" in note for note in plan.notes)
