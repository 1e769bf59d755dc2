"""Base weights load in the mixed-precision dtype on GPUs, trainable weights stay fp32, pure bf16 only for full FT."""

from __future__ import annotations

import itertools

import pytest
import torch

from engine.models import Runtime, base_weight_dtype, load_base_model, resolve_runtime, trains_base_weights
from tests.conftest import make_config

FP32, BF16, FP16 = torch.float32, torch.bfloat16, torch.float16
ADAPTER_METHODS = ["lora", "adapters", "prefix_tuning"]


def expected_dtype(device: str, precision: str, trains_base: bool, pure_bf16: bool) -> torch.dtype:
    """The rule, spelled out case by case."""
    if device == "cpu" or precision == "fp32":
        return FP32
    if trains_base:
        return BF16 if precision == "bf16" and pure_bf16 else FP32
    return {"bf16": BF16, "fp16": FP16}[precision]


@pytest.mark.parametrize("device,precision,trains_base,pure_bf16",
                         list(itertools.product(["cpu", "cuda", "mps"], ["fp32", "bf16", "fp16"], [True, False],
                                                [True, False])))
def test_base_weight_dtype_for_every_combination(device: str, precision: str, trains_base: bool,
                                                 pure_bf16: bool) -> None:
    runtime = Runtime(torch.device(device), precision)
    assert base_weight_dtype(trains_base, runtime, pure_bf16) == expected_dtype(device, precision, trains_base,
                                                                                pure_bf16)


def test_no_runtime_is_fp32_and_the_methods_say_whether_they_train_the_base() -> None:
    assert base_weight_dtype(True, None, True) == base_weight_dtype(False, None, False) == FP32
    assert trains_base_weights("full_finetune")
    assert not any(trains_base_weights(m) for m in ["lora", "qlora", "adapters", "prefix_tuning", "no-such-method"])


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch):
    """A CUDA device as resolve_runtime sees it; the caller says whether it runs bf16."""
    def install(bf16: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return install


@pytest.mark.parametrize("method,mixed_precision,bf16_gpu,precision,pure,dtype", [
    ("full_finetune", "auto", True, "bf16", True, BF16),
    ("full_finetune", "bf16", False, "fp16", False, FP32),  # no bf16 on this GPU: fp16 autocast, fp32 master weights
    ("full_finetune", "no", True, "fp32", False, FP32),
    ("lora", "auto", True, "bf16", False, BF16),  # adapters: the base is bf16 already, pure_bf16 means nothing
    ("adapters", "auto", False, "fp16", False, FP16),
])
def test_resolve_runtime_decides_pure_bf16_and_the_base_dtype(method: str, mixed_precision: str, bf16_gpu: bool,
                                                              precision: str, pure: bool, dtype: torch.dtype,
                                                              fake_gpu) -> None:
    fake_gpu(bf16_gpu)
    cfg = make_config(method, hardware={"device": "cuda", "mixed_precision": mixed_precision, "pure_bf16": True})
    runtime = resolve_runtime(cfg)
    assert runtime.device.type == "cuda" and runtime.precision == precision and runtime.pure_bf16 == pure
    assert any("pure_bf16 is ignored" in note for note in runtime.notes) == (not pure)
    assert load_base_model(cfg, runtime).dtype == dtype  # loaded on the CPU: the engine moves it to the GPU later


def test_cpu_ignores_pure_bf16_and_loads_fp32() -> None:
    cfg = make_config("full_finetune", hardware={"device": "cpu", "mixed_precision": "no", "pure_bf16": True})
    runtime = resolve_runtime(cfg)
    assert not runtime.pure_bf16 and any("pure_bf16 is ignored" in n for n in runtime.notes)
    assert load_base_model(cfg, runtime).dtype == FP32


def adapted(method: str, runtime: Runtime, pure_bf16: bool = False, **method_specific) -> torch.nn.Module:
    """The model loaded and adapted as engine.runner.build does for `runtime`, left on the CPU (a pretended GPU)."""
    from engine.runner import MethodContext
    from methods.catalogue import get_catalogue

    cfg = make_config(method, hardware={"mixed_precision": "no", "pure_bf16": pure_bf16},
                      method_specific=method_specific)
    model = load_base_model(cfg, runtime)
    impl = get_catalogue().get(method).implementation()
    return impl.apply(model, cfg, MethodContext(cfg, runtime, lambda level, message: None))


def train_step(model: torch.nn.Module, dtype: torch.dtype) -> float:
    """One forward/backward under CPU autocast, as the trainer runs it; returns the loss."""
    ids = torch.tensor([[1, 20, 30, 40, 50, 2]])
    with torch.autocast("cpu", dtype=dtype):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
    loss.backward()
    return float(loss.detach())


@pytest.mark.parametrize("method,specific", [
    ("lora", {}),
    ("lora", {"bias": "all", "modules_to_save": ["lm_head"], "target_modules": "all-linear"}),
    ("adapters", {"placement": "both"}),
    ("prefix_tuning", {"prefix_projection": True, "encoder_hidden_size": 32}),
])
def test_frozen_base_in_bf16_and_trainable_weights_in_fp32(method: str, specific: dict) -> None:
    model = adapted(method, Runtime(torch.device("cuda"), "bf16"), **specific)
    trainable = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.dtype for n, p in model.named_parameters() if not p.requires_grad}
    assert trainable and set(trainable.values()) == {FP32}, trainable
    assert frozen and set(frozen.values()) == {BF16}
    loss = train_step(model, BF16)
    assert loss == loss and all(p.grad is not None and p.grad.dtype == FP32 for p in model.parameters()
                                if p.requires_grad)


def test_fp16_gpu_loads_adapter_bases_in_fp16() -> None:
    model = adapted("lora", Runtime(torch.device("cuda"), "fp16"))
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {FP16}
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {FP32}


@pytest.mark.parametrize("precision,pure_bf16,dtype", [("bf16", True, BF16), ("bf16", False, FP32),
                                                       ("fp16", True, FP32)])
def test_full_finetune_keeps_fp32_master_weights_unless_pure_bf16(precision: str, pure_bf16: bool,
                                                                  dtype: torch.dtype) -> None:
    model = adapted("full_finetune", Runtime(torch.device("cuda"), precision), pure_bf16=pure_bf16)
    assert {p.dtype for p in model.parameters()} == {dtype}
    assert all(p.requires_grad for p in model.parameters())
