"""The trained AdaLoRA model: stock PEFT reloads what it saves (same logits, it generates), on Llama and GPT-2;
the orthogonality penalty reaches A and B; a run resumed after the final allocation keeps its ranks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.protocol import Step
from methods.adalora import implementation as adalora
from methods.adalora.tests.support import BUILTIN, SCHEDULE, STEPS, adalora_config, make_trainer

IDS = torch.tensor([[1, 20, 30, 40, 50, 60, 70]])


def _nonzero_singular_values(model) -> int:
    return sum(int((p != 0).sum()) for p in adalora.lora_e(model).values())


@pytest.mark.filterwarnings("ignore:The following rank_pattern keys")  # stock PEFT's, see the README
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_stock_peft_reloads_the_saved_adapter(arch: str, tmp_path: Path, gpt2_folder: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from engine.models import model_source

    cfg = adalora_config(BUILTIN if arch == "llama" else str(gpt2_folder))
    trainer = make_trainer(tmp_path, cfg)
    trainer.fit()
    model = trainer.model
    layers = len(adalora.lora_e(model))
    assert _nonzero_singular_values(model) == SCHEDULE["target_r"] * layers  # pruned in the weights, not only counted
    adalora.save(model, tmp_path / "adapter")

    base = AutoModelForCausalLM.from_pretrained(model_source(cfg.base_model))  # a fresh base, stock PEFT
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        trained_logits, reloaded_logits = model(IDS).logits, reloaded(IDS).logits
        plain_logits = AutoModelForCausalLM.from_pretrained(model_source(cfg.base_model))(IDS).logits
    torch.testing.assert_close(reloaded_logits, trained_logits, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(reloaded_logits, plain_logits, atol=1e-4)  # the adapter does something
    kept = sum(p.shape[0] for p in adalora.lora_e(reloaded).values())
    assert kept == SCHEDULE["target_r"] * layers  # reloaded trimmed to the kept ranks
    out = reloaded.generate(input_ids=IDS, attention_mask=torch.ones_like(IDS), max_new_tokens=4, do_sample=False)
    assert IDS.shape[1] < out.shape[1] <= IDS.shape[1] + 4


def test_orthogonality_penalty_has_gradients_for_a_and_b(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, adalora_config())
    model = trainer.model
    penalty = adalora.regularization(model)
    assert penalty.ndim == 0 and float(penalty.detach()) > 0
    penalty.backward()
    for name, param in model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        elif "lora_E" in name:
            assert param.grad is None, name  # the penalty is on the singular vectors only
    torch.testing.assert_close(penalty.detach(), _peft_penalty(model), rtol=1e-4, atol=1e-5)
    off = make_trainer(tmp_path / "off", adalora_config(orth_reg_weight=0))
    assert adalora.regularization(off.model) is None


def _peft_penalty(model) -> torch.Tensor:
    """What AdaLoraModel.forward adds to a loss the model returns itself (the engine computes its own loss)."""
    model.eval()  # no dropout: the same loss twice
    with torch.no_grad():
        plain = model.base_model.model(input_ids=IDS, labels=IDS).loss
        with_penalty = model(input_ids=IDS, labels=IDS).loss
    return with_penalty - plain


def test_a_run_resumed_after_the_final_allocation_keeps_its_ranks(tmp_path: Path) -> None:
    from engine.control import Control
    from engine.errors import Cancelled

    control, first = Control(), []

    def emit(event) -> None:
        first.append(event)
        if isinstance(event, Step) and event.step == 8:  # after the final allocation (step 7)
            control.request_cancel("test")

    cfg = adalora_config()
    cut = make_trainer(tmp_path, cfg, control=control)
    cut.emit = emit
    with pytest.raises(Cancelled):
        cut.fit()
    folder = tmp_path / "checkpoints" / "step-8"
    target = SCHEDULE["target_r"] * len(adalora.lora_e(cut.model))

    stock = make_trainer(tmp_path / "stock", cfg)  # PEFT alone: the checkpoint restores weights, not the pattern
    stock.resume_from(folder)
    assert adalora.peft_config(stock.model).rank_pattern is None
    with pytest.raises((AttributeError, TypeError)):
        stock.model.base_model.update_and_allocate(9)

    rest: list = []
    resumed = make_trainer(tmp_path, cfg, events=rest)
    resumed.resume_from(folder)
    resumed.fit()
    steps = [e for e in rest if isinstance(e, Step)]
    assert [e.step for e in steps] == list(range(9, STEPS + 1))
    assert all(e.method_metrics["rank_budget"] == target for e in steps)
    assert _nonzero_singular_values(resumed.model) == target
    assert adalora.layer_ranks(resumed.model) == adalora.layer_ranks(cut.model)
