"""LoRA variants (DoRA, rsLoRA, Gaussian/PiSSA/OLoRA init, LoRA+) each change training visibly; refused combinations
are validation errors; PiSSA/OLoRA adapters are saved converted, so stock PEFT reloads them on the original base."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from engine.errors import EngineError
from methods.lora.tests.support import IDS, base_model, build, config, logits, stock_reload, train_steps
from methods.validation import validate_config
from tests.engine_builders import built


def lora_layers(model) -> list:
    return [m for m in model.modules() if hasattr(m, "lora_A") and "default" in m.lora_A]


def saved(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_dora_trains_magnitude_vectors_and_saves_them(tmp_path: Path) -> None:
    _, _, plain, _ = built("lora", r=4)
    _, _, dora, impl = built("lora", r=4, use_dora=True)
    magnitudes = [n for n, p in dora.named_parameters() if "lora_magnitude_vector" in n and p.requires_grad]
    assert magnitudes and not any("lora_magnitude_vector" in n for n, _ in plain.named_parameters())
    impl.save(dora, tmp_path)
    assert sum("lora_magnitude_vector" in k for k in saved(tmp_path)) == len(magnitudes)


def test_rslora_scales_by_alpha_over_sqrt_r() -> None:
    _, _, plain, _ = built("lora", r=16, lora_alpha=32)
    _, _, rs, _ = built("lora", r=16, lora_alpha=32, use_rslora=True)
    assert lora_layers(plain)[0].scaling["default"] == 2.0 and lora_layers(rs)[0].scaling["default"] == 8.0
    for model in (plain, rs):  # the same (seeded) A, the same non-zero B: only the scaling differs
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.fill_(0.01)
    assert not torch.allclose(logits(plain), logits(rs))


def test_gaussian_init_draws_a_from_a_normal_with_std_one_over_r() -> None:
    _, _, kaiming, _ = built("lora", r=8)
    _, _, gaussian, _ = built("lora", r=8, init_lora_weights="gaussian")
    a_gauss = torch.cat([m.lora_A["default"].weight.flatten() for m in lora_layers(gaussian)])
    a_kaiming = torch.cat([m.lora_A["default"].weight.flatten() for m in lora_layers(kaiming)])
    assert abs(a_gauss.std().item() - 1 / 8) < 0.01 and a_kaiming.std().item() < 0.07  # 1/sqrt(3 x 128)
    assert all(not m.lora_B["default"].weight.any() for m in lora_layers(gaussian))


@pytest.mark.parametrize("options", [{"init_lora_weights": "pissa"},
                                     {"init_lora_weights": "pissa", "pissa_niter": 4},
                                     {"init_lora_weights": "olora"},
                                     {"init_lora_weights": "pissa", "use_dora": True, "use_rslora": True},
                                     {"init_lora_weights": "olora", "modules_to_save": ["lm_head"]}],
                         ids=["pissa", "pissa-fast", "olora", "pissa-dora-rslora", "olora-modules_to_save"])
def test_pissa_and_olora_start_from_the_base_and_save_an_adapter_for_the_original_base(options, tmp_path) -> None:
    cfg = config("lora", r=4, lora_alpha=8, training={"learning_rate": 1e-2}, **options)  # was in method_specific,
    # where it was silently ignored until unknown keys became errors
    fresh = base_model(cfg)
    model, impl = build(cfg)
    layer = lora_layers(model)[0]
    assert layer.lora_B["default"].weight.abs().sum() > 0  # B starts non-zero ...
    original = dict(fresh.named_parameters())
    name = next(n for n, m in model.base_model.model.named_modules() if m is layer)
    assert not torch.allclose(layer.base_layer.weight, original[f"{name}.weight"])  # ... the base keeps the residual
    assert torch.allclose(logits(model), logits(fresh), atol=1e-4)  # and the adapted model starts as the base
    train_steps(model, impl, cfg)
    trained = logits(model)
    assert not torch.allclose(trained, logits(fresh), atol=1e-3)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    model.train()
    impl.save(model, tmp_path)  # as a checkpoint mid-run: the model stays as it was, in training mode
    assert all(m.training for m in model.modules()) and set(model.peft_config) == {"default"}
    assert [n for n, p in model.named_parameters() if p.requires_grad] == trainable
    reloaded = stock_reload(cfg, tmp_path)
    assert reloaded.peft_config["default"].r == 8 and reloaded.peft_config["default"].init_lora_weights is True
    assert torch.allclose(logits(reloaded), trained, atol=1e-4)


def test_loraplus_gives_lora_b_ratio_times_the_learning_rate_with_the_engines_weight_decay() -> None:
    from engine.optim import build_optimizer, build_scheduler

    cfg = config("lora", r=4, use_dora=True, loraplus_lr_ratio=16,
                 training={"learning_rate": 1e-3, "weight_decay": 0.01, "warmup_steps": 2})
    model, impl = build(cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    optimizer = build_optimizer(model, cfg.training, impl, cfg)

    def groups(part: str) -> list[dict]:
        return [g for g in optimizer.param_groups if any(part in names[id(p)] for p in g["params"])]

    (a,), (b,), (magnitude,) = groups("lora_A"), groups("lora_B"), groups("lora_magnitude_vector")
    assert all("lora_A" in names[id(p)] for p in a["params"]) and all("lora_B" in names[id(p)] for p in b["params"])
    assert (a["weight_decay"], b["weight_decay"], magnitude["weight_decay"]) == (0.01, 0.01, 0.0)  # 1-D: no decay
    scheduler = build_scheduler(optimizer, cfg.training, total_steps=10)
    for _ in range(2):  # through the warm-up: both learning rates follow the schedule, 16 apart
        model(IDS, labels=IDS).loss.backward()
        optimizer.step()
        scheduler.step()
        assert b["lr"] == pytest.approx(16 * a["lr"]) and magnitude["lr"] == pytest.approx(16 * a["lr"])
    assert a["lr"] == pytest.approx(1e-3)  # warm-up done: A at learning_rate, B at 16 x
    plain_cfg = config("lora", r=4, training={"weight_decay": 0.01})
    plain, plain_impl = build(plain_cfg)
    default = build_optimizer(plain, plain_cfg.training, plain_impl, plain_cfg)
    assert [g["weight_decay"] for g in default.param_groups] == [0.01, 0.0]
    assert len({g["lr"] for g in default.param_groups}) == 1


@pytest.mark.parametrize("optimizer", ["sgd", "adafactor"])
def test_loraplus_works_with_every_optimizer(optimizer: str) -> None:
    cfg = config("lora", r=4, loraplus_lr_ratio=4, training={"optimizer": optimizer, "learning_rate": 1e-2,
                                                              "lr_scheduler": "constant"})
    model, impl = build(cfg)
    before = logits(model)
    opt = train_steps(model, impl, cfg, steps=2)
    assert sorted({g["lr"] for g in opt.param_groups}) == pytest.approx([1e-2, 4e-2])
    assert not torch.allclose(logits(model), before)


def problems(method: str, **method_specific) -> tuple[dict[str, str], dict[str, str]]:
    """({path: message} of the errors, of the warnings) for a config with these options."""
    report = validate_config({"method": method, "method_specific": method_specific}).report
    return ({e.path: e.message + " " + e.hint for e in report.errors},
            {w.path: w.message + " " + w.hint for w in report.warnings})


def test_refused_combinations_are_validation_errors_with_a_hint() -> None:
    errors, _ = problems("lora", init_lora_weights="pissa", bias="all")
    assert "only 1 adapter with bias" in errors["method_specific.bias"]
    errors, _ = problems("lora", init_lora_weights="olora", fan_in_fan_out=True)
    assert "pissa" in errors["method_specific.init_lora_weights"]
    errors, _ = problems("lora", loraplus_lr_ratio=0.5)
    assert ">= 1" in errors["method_specific.loraplus_lr_ratio"]
    for init in ("pissa", "olora"):
        errors, _ = problems("qlora", init_lora_weights=init)
        assert 'method "lora"' in errors["method_specific.init_lora_weights"]
    for good in ({"use_dora": True, "use_rslora": True, "loraplus_lr_ratio": 16}, {"init_lora_weights": "pissa"},
                 {"loraplus_lr_ratio": 0}, {"init_lora_weights": "olora", "use_dora": True}):
        assert problems("lora", **good) == ({}, {}), good
    assert problems("qlora", use_dora=True, use_rslora=True, init_lora_weights="gaussian") == ({}, {})


def test_ignored_options_and_rslora_alpha_are_warnings() -> None:
    _, warnings = problems("lora", pissa_niter=4, loraplus_lr_embedding=1e-5)
    assert set(warnings) == {"method_specific.pissa_niter", "method_specific.loraplus_lr_embedding"}
    _, warnings = problems("lora", r=64, lora_alpha=16, use_rslora=True)  # alpha/sqrt(r) = 2: fine
    assert warnings == {}
    _, warnings = problems("lora", r=64, lora_alpha=4, use_rslora=True)
    assert "sqrt(r)" in warnings["method_specific.lora_alpha"]


def test_olora_on_conv1d_layers_chosen_by_auto_is_a_clear_config_error(tiny_models) -> None:
    folder = tiny_models["gpt2"]
    with pytest.raises(EngineError) as info:
        build(config("lora", base_model=str(folder), init_lora_weights="olora"))
    assert info.value.kind == "config" and "Conv1D" in info.value.message and "pissa" in info.value.hint
    model, _ = build(config("lora", base_model=str(folder), init_lora_weights="pissa", use_dora=True))
    assert model.peft_config["default"].fan_in_fan_out


def test_variants_are_declared_for_the_catalogue() -> None:
    from methods.catalogue import get_catalogue

    lora = {v.title: v.options for v in get_catalogue().get("lora").info.variants}
    qlora = {v.title for v in get_catalogue().get("qlora").info.variants}
    assert {"DoRA", "rsLoRA", "PiSSA", "OLoRA", "LoRA+"} <= set(lora) and lora["DoRA"] == {"use_dora": True}
    assert {"DoRA", "rsLoRA", "LoRA+"} <= qlora and not {"PiSSA", "OLoRA"} & qlora
    for options in lora.values():  # each variant's options validate
        assert problems("lora", **options)[0] == {}


def test_scaling_helpers_agree_with_peft() -> None:
    _, _, model, _ = built("lora", r=9, lora_alpha=6, use_rslora=True)
    assert lora_layers(model)[0].scaling["default"] == pytest.approx(6 / math.sqrt(9))
