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


def test_a_layer_narrower_than_a_cpu_block_is_a_clear_model_error(tmp_path) -> None:
    import transformers

    from engine.builtin_model import save_random_model, special_token_ids, tiny_tokenizer
    from engine.models import resolve_runtime
    from engine.runner import build
    from tests.conftest import make_config

    tokenizer = tiny_tokenizer()
    config = transformers.GPT2Config(**special_token_ids(tokenizer), n_embd=32, n_layer=1, n_head=4, n_positions=64)
    save_random_model(tmp_path / "narrow", config, tokenizer)
    cfg = make_config("qlora", base_model=str(tmp_path / "narrow"), hardware={"mixed_precision": "no"})
    with pytest.raises(EngineError) as info:
        build(cfg, resolve_runtime(cfg), lambda level, msg: None)
    assert info.value.kind == "model" and "32 input features" in str(info.value) and "lora" in info.value.hint
