"""QLoRA quantises the base with bitsandbytes on CPU, and fails clearly where there is no backend."""

from __future__ import annotations

import pytest

from engine.errors import EngineError
from methods.qlora import implementation as qlora
from tests.engine_builders import built, trainable


def test_base_is_4bit_nf4_with_double_quant() -> None:
    _, _, model, _ = built("qlora", r=8, lora_alpha=16)
    layers = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert layers, "no 4-bit layers"
    state = layers[0].weight.quant_state
    assert state.quant_type == "nf4" and state.nested


def test_rank_changes_trainable_parameters() -> None:
    assert trainable("qlora", r=16, lora_alpha=32) == 2 * trainable("qlora", r=8, lora_alpha=16)


def test_missing_backend_is_unsupported_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_backend(device):  # what bitsandbytes raises for a device it has no kernels for
        raise NotImplementedError("no kernel for device")

    monkeypatch.setattr(qlora, "probe_backend", no_backend)
    with pytest.raises(EngineError) as info:
        built("qlora")
    assert info.value.kind == "unsupported_hardware" and "lora" in info.value.hint.lower()
