"""The chunked loss (engine/loss.py): equal to the plain summed loss and its gradients, never full logits at once;
gradient checkpointing trains every method of the catalogue."""

from __future__ import annotations

import contextlib
import math
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from engine import loss as L
from engine.protocol import EventReader, Finished, Step
from engine.run_store import RunStore
from methods.catalogue import get_catalogue
from tests.conftest import make_config
from tests.tiny_models import save_tiny_model

LOSS_RTOL = 1e-5  # the bar for the loss
# gradients: allclose with rtol GRAD_RTOL and atol GRAD_ATOL x the tensor's largest magnitude (measured: <= 1e-6 of
# it; only the summation order differs)
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5
ROWS = 5  # does not divide the batch's target rows (17)
EXACT_METHODS = [("lora", {"lora_dropout": 0.0}), ("lora-head", {"lora_dropout": 0.0, "modules_to_save": ["lm_head"]}),
                 ("full_finetune", {}), ("prefix_tuning", {}), ("adapters", {})]


def build(method: str, folder: Path | None = None, checkpointing: bool = False, **method_specific: Any) -> Any:
    """The model adapted by `method`, built as the engine builds it (built-in model unless `folder`)."""
    from engine.models import resolve_runtime
    from engine.runner import build as engine_build

    sections: dict[str, Any] = {"hardware": {"mixed_precision": "no", "gradient_checkpointing": checkpointing},
                                "method_specific": method_specific}
    if folder is not None:
        sections["base_model"] = str(folder)
    cfg = make_config(method.split("-")[0], **sections)
    return engine_build(cfg, resolve_runtime(cfg), lambda level, message: None)[1]


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 (tied output head, Conv1D layers) with the built-in tokenizer."""
    return save_tiny_model(tmp_path_factory.mktemp("gpt2") / "model", "gpt2")


def batch(vocab: int, rows: int = 3, width: int = 11) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Inputs and labels with a masked prompt (first 4 labels) and one right-padded row: 17 target rows."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (rows, width), generator=generator)
    mask = torch.ones(rows, width, dtype=torch.long)
    mask[1, 8:] = 0
    labels = ids.clone()
    labels[:, :4] = -100
    labels[mask == 0] = -100
    return {"input_ids": ids, "attention_mask": mask}, labels


def loss_and_grads(model: Any, compute: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = compute()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_exact(model: Any, rows: int = ROWS) -> None:
    """Chunked and plain: the same loss (relative LOSS_RTOL) and the same gradient for every trainable parameter."""
    inputs, labels = batch(model.config.vocab_size)
    assert L.chunked_supported(model, inputs)
    plain, plain_grads = loss_and_grads(model, lambda: L.plain_loss_sum(model, inputs, labels))
    chunked, chunked_grads = loss_and_grads(model, lambda: L.chunked_loss_sum(model, inputs, labels, rows=rows))
    assert abs(float(chunked) - float(plain)) <= LOSS_RTOL * abs(float(plain)), (float(chunked), float(plain))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(plain_grads) == set(chunked_grads) and plain_grads, (set(plain_grads) ^ set(chunked_grads))
    assert set(plain_grads) <= trainable
    for name, grad in plain_grads.items():
        scale = float(grad.abs().max())
        assert torch.allclose(chunked_grads[name], grad, rtol=GRAD_RTOL, atol=GRAD_ATOL * scale), \
            (name, float((chunked_grads[name] - grad).abs().max()))


@pytest.mark.parametrize("method,spec", EXACT_METHODS, ids=[m for m, _ in EXACT_METHODS])
def test_chunked_equals_plain_on_the_builtin_model(method: str, spec: dict[str, Any]) -> None:
    model = build(method, **spec).eval()  # eval: no dropout, so both passes see the same network
    assert_exact(model)
    if method in ("full_finetune", "lora-head"):  # the head is trained: its weight's gradient was compared
        head = L.output_head(model)
        assert head is not None and any(p.requires_grad for p in head.parameters())


@pytest.mark.parametrize("method,spec", EXACT_METHODS, ids=[m for m, _ in EXACT_METHODS])
def test_chunked_equals_plain_on_gpt2_with_a_tied_head(method: str, spec: dict[str, Any], gpt2_folder: Path) -> None:
    if method == "lora-head":
        spec = {**spec, "target_modules": ["c_attn"]}
    model = build(method, gpt2_folder, **spec).eval()
    if method != "lora-head":  # (modules_to_save copies the head: the copy is trained, untied)
        head = L.output_head(model)
        assert head is not None and head.weight is model.get_input_embeddings().weight
    assert_exact(model)


@pytest.mark.parametrize("rows", [1, 3, 16, 17, 1000])
def test_any_chunk_size_gives_the_plain_loss(rows: int) -> None:
    assert_exact(build("full_finetune").eval(), rows=rows)


def test_masked_rows_are_ignored() -> None:
    """Changing the input of masked label positions' targets (label -100) changes nothing; every label masked: 0."""
    model = build("lora", lora_dropout=0.0).eval()
    inputs, labels = batch(model.config.vocab_size)
    with torch.no_grad():
        base = L.chunked_loss_sum(model, inputs, labels, rows=ROWS)
        assert torch.allclose(base, L.plain_loss_sum(model, inputs, labels), rtol=LOSS_RTOL)
        # only the labels' unmasked targets count: a loss over every label is larger (more rows), equal to plain's
        every = inputs["input_ids"].clone()
        assert float(L.chunked_loss_sum(model, inputs, every, rows=ROWS)) > float(base)
        nothing = torch.full_like(labels, -100)
        assert float(L.chunked_loss_sum(model, inputs, nothing, rows=ROWS)) == 0.0
    zero = L.chunked_loss_sum(model, inputs, nothing, rows=ROWS)
    zero.backward()  # an all-masked batch still backpropagates (a zero gradient)
    assert float(zero.detach()) == 0.0


def test_full_logits_are_never_materialised() -> None:
    """The head never returns more than one chunk of rows, and no batch x seq x vocab tensor is saved for backward."""
    model = build("full_finetune").train()
    inputs, labels = batch(model.config.vocab_size, rows=4, width=32)
    vocab, full = model.config.vocab_size, 4 * 32 * model.config.vocab_size
    assert L.chunked_supported(model, inputs)  # the one-off probe runs here, on a few tokens
    head = L.output_head(model)
    assert head is not None
    head_rows: list[int] = []
    handle = head.register_forward_hook(  # (the bypassed call during the model's forward returns hidden states)
        lambda module, args, output: head_rows.append(output.shape[:-1].numel()) if output.shape[-1] == vocab else None)
    saved: list[int] = []

    weights = {p.untyped_storage().data_ptr() for p in head.parameters()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:  # logits-like: vocab wide, and not the head's own weight
        logits_like = tensor.dim() > 1 and tensor.shape[-1] == vocab
        saved.append(tensor.numel() if logits_like and tensor.untyped_storage().data_ptr() not in weights else 0)
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = L.chunked_loss_sum(model, inputs, labels, rows=8)
        loss.backward()
    finally:
        handle.remove()
    assert head_rows and max(head_rows) <= 8  # one chunk of rows at a time
    assert max(saved) <= 8 * vocab < full  # at most one chunk's logits, never the batch's
    # the plain path, for contrast, saves the logits of every target row at once (and computes the batch's)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        L.plain_loss_sum(model, inputs, labels)
    assert max(saved) == L.target_tokens({"labels": labels}) * vocab > 8 * vocab


def test_softcapped_logits_are_reproduced() -> None:
    """Gemma 2's final_logit_softcapping is applied per chunk: exact against the plain loss."""
    import transformers

    from engine.builtin_model import special_token_ids, tiny_tokenizer

    config = transformers.Gemma2Config(**special_token_ids(tiny_tokenizer()), hidden_size=64, intermediate_size=128,
                                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                       final_logit_softcapping=2.0)  # a small cap, so that it matters
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    assert_exact(model)


def test_unknown_logits_post_processing_takes_the_plain_path() -> None:
    """A model that changes the head's output in a way we do not reproduce: the probe says so, the loss is plain."""
    inner = build("full_finetune").eval()

    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.config = inner, inner.config

        def get_output_embeddings(self) -> Any:
            return inner.get_output_embeddings()

        def forward(self, **kwargs: Any) -> Any:
            out = self.inner(**kwargs)
            out.logits = out.logits * 1.5
            return out

    model = Scaled()
    inputs, labels = batch(inner.config.vocab_size)
    assert L.chunked_supported(inner, inputs) and not L.chunked_supported(model, inputs)
    with torch.no_grad():
        got = L.model_loss_sum(model, inputs, labels)
        assert torch.equal(got, L.plain_loss_sum(model, inputs, labels))


def test_a_head_with_a_hook_takes_the_plain_path() -> None:
    model = build("lora", lora_dropout=0.0).eval()
    inputs, _ = batch(model.config.vocab_size)
    head = L.output_head(model)
    assert head is not None
    handle = head.register_forward_hook(lambda module, args, output: output)
    try:
        assert not L.chunked_supported(model, inputs)
    finally:
        handle.remove()


@pytest.mark.parametrize("method", ["lora", "full_finetune", "adapters"])
def test_chunked_equals_plain_with_gradient_checkpointing(method: str) -> None:
    """Train mode, so the decoder layers really are checkpointed (no dropout, so both passes are the same)."""
    spec: dict[str, Any] = {"lora_dropout": 0.0} if method == "lora" else {}
    model = build(method, checkpointing=True, **spec).train()
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    assert_exact(model)


def qlora_skip_reason() -> str | None:
    """Why QLoRA cannot run here: bitsandbytes without a 4-bit backend for the CPU (the built-in model is 128 wide,
    a multiple of the CPU kernels' 64-feature blocks)."""
    if torch.cuda.is_available():
        return None
    try:
        from methods.qlora.implementation import probe_backend

        probe_backend(torch.device("cpu"))
    except Exception as exc:  # no bitsandbytes, or no CPU backend
        return f"bitsandbytes has no CPU 4-bit backend here ({type(exc).__name__})"
    return None


GC_XFAIL: dict[str, str] = {}  # method -> why gradient checkpointing cannot train it (strict xfail)


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.xfail(reason=GC_XFAIL[m], strict=True))
                                    if m in GC_XFAIL else m for m in get_catalogue().names()])
def test_gradient_checkpointing_trains_every_method(method: str, store: RunStore, learnable_dataset: Path) -> None:
    """Two optimizer steps with hardware.gradient_checkpointing on the built-in model: completed, finite losses."""
    from engine.runner import run
    from lf_tui.run_setup import create_run

    if method == "qlora" and (reason := qlora_skip_reason()):
        pytest.skip(reason)
    cfg = make_config(method, training={"max_steps": 2, "batch_size": 2},
                      hardware={"mixed_precision": "no", "gradient_checkpointing": True},
                      monitoring={"eval_steps": 0, "save_steps": 0}, data={"eval_split": 0.0})
    run_dir = create_run(store, cfg, str(learnable_dataset), None)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        run(run_dir.path)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    events = list(EventReader().feed_all(run_dir.events_path.read_bytes().splitlines()))
    finished = [e for e in events if isinstance(e, Finished)]
    assert finished and finished[-1].status == "completed", [e for e in events if type(e).__name__ == "Error"]
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses), losses


def test_autocast_chunks_match_the_plain_path() -> None:
    """Under bf16 autocast the head's matmul runs in bf16 in both paths, the cross-entropy in fp32."""
    model = build("full_finetune").eval()

    def autocast() -> Any:
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)

    inputs, labels = batch(model.config.vocab_size)
    assert L.chunked_supported(model, inputs, autocast)
    plain, plain_grads = loss_and_grads(model, lambda: L.plain_loss_sum(model, inputs, labels, autocast))
    chunked, chunked_grads = loss_and_grads(model, lambda: L.chunked_loss_sum(model, inputs, labels, autocast, ROWS))
    assert chunked.dtype == plain.dtype == torch.float32
    assert abs(float(chunked) - float(plain)) <= LOSS_RTOL * abs(float(plain)), (float(chunked), float(plain))
    for name, grad in plain_grads.items():  # bf16 matmuls: the gradients agree to bf16 rounding
        assert torch.allclose(chunked_grads[name], grad, rtol=1e-2, atol=1e-2 * float(grad.abs().max())), name


def test_the_trainer_loss_takes_the_chunked_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trainer._loss_sum runs the chunked path on the built-in model, equal to the plain loss."""
    from types import SimpleNamespace

    from engine.trainer import Trainer

    model = build("lora", lora_dropout=0.0).eval()
    inputs, labels = batch(model.config.vocab_size)
    calls: list[int] = []
    chunked = L.chunked_loss_sum

    def counted(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(1)
        return chunked(*args, **kwargs)

    monkeypatch.setattr(L, "chunked_loss_sum", counted)
    fake = SimpleNamespace(model=model, runtime=SimpleNamespace(device=torch.device("cpu")),
                           _autocast=contextlib.nullcontext)
    with torch.no_grad():
        got = Trainer._loss_sum(fake, {**inputs, "labels": labels})  # type: ignore[arg-type]
        expected = L.plain_loss_sum(model, inputs, labels)
    assert calls == [1]
    assert abs(float(got) - float(expected)) <= LOSS_RTOL * abs(float(expected))
