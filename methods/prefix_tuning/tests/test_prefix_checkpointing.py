"""Prefix tuning with hardware.gradient_checkpointing: the decoder layers are checkpointed with the prefix cache kept.

The same loss and gradients as without checkpointing (built-in Llama-style model and a GPT-2, dropout included),
fewer tensors saved for backward, evaluation and generation untouched, and a real engine run that trains, saves and
generates.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from engine import loss as L
from engine.protocol import Finished, Log, RunStarted, Step
from engine.run_store import RunStore
from methods.prefix_tuning import implementation as prefix
from tests.conftest import make_config, train
from tests.tiny_models import save_tiny_model

LOSS_RTOL = 1e-5
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5  # atol: times the gradient's largest magnitude (as tests/test_chunked_loss.py)


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 (the cache passed positionally to its blocks; dropout 0.1 everywhere)."""
    return save_tiny_model(tmp_path_factory.mktemp("gpt2") / "model", "gpt2")


def build(checkpointing: bool, folder: Path | None = None, **method_specific: Any) -> Any:
    """The prefix-tuned model as the engine builds it (engine.runner.build)."""
    from engine.models import resolve_runtime
    from engine.runner import build as engine_build

    sections: dict[str, Any] = {"hardware": {"gradient_checkpointing": checkpointing, "mixed_precision": "no"},
                                "method_specific": method_specific}
    if folder is not None:
        sections["base_model"] = str(folder)
    cfg = make_config("prefix_tuning", **sections)
    return engine_build(cfg, resolve_runtime(cfg), lambda level, message: None)[1]


def pair(folder: Path | None = None, **method_specific: Any) -> tuple[Any, Any]:
    """(plain, checkpointed) models with the same weights, both in training mode."""
    plain, checkpointed = build(False, folder, **method_specific), build(True, folder, **method_specific)
    checkpointed.load_state_dict(plain.state_dict())
    return plain.train(), checkpointed.train()


def batch(vocab: int, rows: int = 3, width: int = 11) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Inputs and labels with a masked prompt and one right-padded row."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (rows, width), generator=generator)
    mask = torch.ones(rows, width, dtype=torch.long)
    mask[1, 8:] = 0
    labels = ids.clone()
    labels[:, :4] = -100
    labels[mask == 0] = -100
    return {"input_ids": ids, "attention_mask": mask}, labels


def loss_and_grads(model: Any, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                   chunked: bool) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same dropout masks in both models (checkpointing replays the RNG state)
    loss = L.model_loss_sum(model, inputs, labels, chunked=chunked)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def base_layers(model: Any) -> list[Any]:
    return prefix.decoder_layers(model.get_base_model())


@pytest.mark.parametrize("arch,chunked,spec", [("builtin", True, {}), ("builtin", False, {}),
                                                ("builtin", True, {"prefix_projection": True,
                                                                   "encoder_hidden_size": 32}),
                                                ("gpt2", True, {}), ("gpt2", False, {})],
                         ids=["builtin-chunked", "builtin-plain", "builtin-projection", "gpt2-chunked", "gpt2-plain"])
def test_checkpointed_loss_and_gradients_equal_the_plain_ones(arch: str, chunked: bool, spec: dict[str, Any],
                                                             gpt2_folder: Path) -> None:
    plain, checkpointed = pair(gpt2_folder if arch == "gpt2" else None, **spec)
    layers = base_layers(checkpointed)
    assert layers and all(prefix.is_checkpointed(layer) for layer in layers)
    assert not any(prefix.is_checkpointed(layer) for layer in base_layers(plain))
    # transformers' own checkpointing stays off (it would drop the prefix cache)
    assert not any(getattr(m, "gradient_checkpointing", False) for m in checkpointed.modules())
    inputs, labels = batch(plain.config.vocab_size)
    expected, expected_grads = loss_and_grads(plain, inputs, labels, chunked)
    got, got_grads = loss_and_grads(checkpointed, inputs, labels, chunked)
    assert abs(got - expected) <= LOSS_RTOL * abs(expected), (got, expected)
    trainable = {n for n, p in plain.named_parameters() if p.requires_grad}
    assert set(expected_grads) == set(got_grads) == trainable  # every trainable parameter (the prompt encoder)
    for name, grad in expected_grads.items():
        assert float(grad.abs().max()) > 0, name  # the gradient really reaches the prefix
        assert torch.allclose(got_grads[name], grad, rtol=GRAD_RTOL, atol=GRAD_ATOL * float(grad.abs().max())), \
            (name, float((got_grads[name] - grad).abs().max()))


def saved_for_backward(model: Any, inputs: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[int, int]:
    """(tensors, bytes) saved for backward outside checkpointed regions during one training forward."""
    count, size = 0, 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal count, size
        count, size = count + 1, size + tensor.numel() * tensor.element_size()
        return tensor

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = L.plain_loss_sum(model, inputs, labels)
    loss.backward()
    return count, size


@pytest.mark.parametrize("arch", ["builtin", "gpt2"])
def test_checkpointing_saves_fewer_tensors_for_backward(arch: str, gpt2_folder: Path) -> None:
    plain, checkpointed = pair(gpt2_folder if arch == "gpt2" else None)
    inputs, labels = batch(plain.config.vocab_size, rows=4, width=32)
    plain_count, plain_bytes = saved_for_backward(plain, inputs, labels)
    count, size = saved_for_backward(checkpointed, inputs, labels)
    assert count < plain_count / 2 and size < plain_bytes / 2, ((count, size), (plain_count, plain_bytes))


def test_layers_are_recomputed_once_each_with_the_prefix_cache() -> None:
    """Each layer runs twice per training step (forward, recompute), and sees prefix + sequence keys both times."""
    from transformers.cache_utils import Cache

    _, model = pair()
    layers = base_layers(model)
    attention = [next(m for m in layer.modules() if hasattr(m, "layer_idx") and m is not layer) for layer in layers]
    seen: dict[int, list[int]] = {i: [] for i in range(len(layers))}
    handles = [a.register_forward_hook(lambda mod, args, kwargs, out, i=i: seen[i].append(
        next(v for v in kwargs.values() if isinstance(v, Cache)).layers[mod.layer_idx].keys.shape[-2]),
        with_kwargs=True) for i, a in enumerate(attention)]
    try:
        inputs, labels = batch(model.config.vocab_size)
        L.plain_loss_sum(model, inputs, labels).backward()
    finally:
        for handle in handles:
            handle.remove()
    n_virtual = model.peft_config["default"].num_virtual_tokens
    assert all(lengths == [n_virtual + 11] * 2 for lengths in seen.values()), seen


def test_without_the_cache_reset_the_recompute_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the entry is reset: otherwise the recompute appends the sequence's keys a second time."""
    _, model = pair()
    monkeypatch.setattr(prefix, "_entry_restorer", lambda cache, index: (lambda: None))
    inputs, labels = batch(model.config.vocab_size)
    loss = L.plain_loss_sum(model, inputs, labels)
    with pytest.raises(RuntimeError):
        loss.backward()


def test_evaluation_and_generation_run_the_layers_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eval mode, or no gradients: no checkpoint, the cache used normally; generation equals the plain model's."""
    import torch.utils.checkpoint as tuc

    plain, checkpointed = pair()
    calls: list[int] = []
    real = tuc.checkpoint

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tuc, "checkpoint", counted)
    ids = torch.tensor([[1, 40, 41, 42, 43]])
    mask = torch.ones_like(ids)
    for mode in ("eval", "train"):
        getattr(plain, mode)(), getattr(checkpointed, mode)()
        with torch.no_grad():
            expected = prefix.generate(plain, ids, mask, max_new_tokens=4, do_sample=False, pad_token_id=0,
                                       output_logits=True, return_dict_in_generate=True)
            got = prefix.generate(checkpointed, ids, mask, max_new_tokens=4, do_sample=False, pad_token_id=0,
                                  output_logits=True, return_dict_in_generate=True)
        assert torch.equal(got.sequences, expected.sequences), mode
        assert all(torch.allclose(g, e, atol=1e-5) for g, e in zip(got.logits, expected.logits)), mode
    checkpointed.eval()
    inputs, labels = batch(checkpointed.config.vocab_size)
    L.plain_loss_sum(checkpointed, inputs, labels).backward()  # eval mode with gradients: not checkpointed either
    assert not calls
    checkpointed.train()
    L.plain_loss_sum(checkpointed, inputs, labels).backward()
    assert len(calls) == len(base_layers(checkpointed))  # back in training: every layer checkpointed


def test_a_deep_copy_checkpoints_its_own_layers() -> None:
    _, model = pair()
    clone = copy.deepcopy(model)
    for layer in base_layers(clone):
        assert layer.forward.__self__ is layer
    inputs, labels = batch(model.config.vocab_size)
    assert torch.allclose(L.plain_loss_sum(clone, inputs, labels), L.plain_loss_sum(model, inputs, labels))


def test_an_engine_run_with_checkpointing_trains_saves_and_generates(store: RunStore,
                                                                      learnable_dataset: Path) -> None:
    from engine.generate import generate

    cfg = make_config("prefix_tuning", hardware={"gradient_checkpointing": True, "mixed_precision": "no"},
                      training={"learning_rate": 3e-2, "max_steps": 12, "lr_scheduler": "constant"})
    run, events, rc = train(store, cfg, learnable_dataset)
    assert rc == 0, (run.path / "engine.log").read_text()[-3000:]
    assert isinstance(events[0], RunStarted) and events[0].trainable_params > 0
    assert not [e for e in events if e.type == "error"]
    logs = [e.message for e in events if isinstance(e, Log)]
    assert any("gradient checkpointing" in m for m in logs), logs
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses), losses
    assert sum(losses[-3:]) < 0.9 * sum(losses[:3]), losses  # it learns
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    assert any(run.weights_dir.glob("*.safetensors"))
    result = generate(run, "Say hi.", max_new_tokens=3)
    assert isinstance(result["completion"], str)
