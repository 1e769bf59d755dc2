"""Each method trains tiny random Llama, Qwen2, GPT-2, GPT-NeoX, Phi-3, Mistral and Gemma models with its defaults."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.errors import EngineError
from engine.protocol import EventReader, Finished, RunStarted, Step
from engine.run_store import RunDir, RunStore
from methods.catalogue import get_catalogue
from tests.conftest import make_config
from tests.tiny_models import ARCHITECTURES, ModelFolders

# what target_modules "auto" picks: PEFT's default where it has one, else the fused attention projection (Phi-3)
AUTO_TARGETS = {"llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"], "gpt2": ["c_attn"],
                "gpt_neox": ["query_key_value"], "phi3": ["qkv_proj"], "mistral": ["q_proj", "v_proj"],
                "gemma": ["q_proj", "v_proj"]}
EVERYWHERE = ("lora", "adapters", "prefix_tuning")  # on every architecture; every other method on the non-Llama ones
NON_LLAMA = ("gpt2", "gpt_neox", "phi3")  # Conv1D and fused query-key-value layers, no q_proj/v_proj
CASES = [(arch, method) for arch in ARCHITECTURES for method in EVERYWHERE]
CASES += [(arch, method) for arch in NON_LLAMA for method in get_catalogue().names() if method not in EVERYWHERE]
CASES += [("gpt2", "adapters-both"), ("gpt_neox", "adapters-both")]  # GPT-2 `attn`, GPT-NeoX `attention`


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random models of each architecture, saved with the built-in tokenizer (built on first use)."""
    return ModelFolders(tmp_path_factory.mktemp("architectures"))


def build_on(folder: Path, method: str, **method_specific: Any) -> tuple[Any, Any]:
    """(config, adapted model) for `method` on the model in `folder`, built as the engine builds it."""
    from engine.models import resolve_runtime
    from engine.runner import build

    cfg = make_config(method, base_model=str(folder), hardware={"mixed_precision": "no"},
                      method_specific=method_specific)
    return cfg, build(cfg, resolve_runtime(cfg), lambda level, message: None)[1]


def run_in_process(store: RunStore, cfg: Any, dataset: Path) -> tuple[RunDir, list[Any]]:
    """The engine's run() (config -> build -> data -> fit -> eval -> save) in this process, signal handlers restored."""
    from engine.runner import run
    from lf_tui.run_setup import create_run

    run_dir = create_run(store, cfg, str(dataset), None)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        run(run_dir.path)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    reader = EventReader()
    return run_dir, list(reader.feed_all(run_dir.events_path.read_bytes().splitlines()))


def saved_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(str(f)).items()}


def is_peft_adapter(folder: Path) -> bool:
    """A PEFT adapter folder (the in-house bottleneck adapters write an adapter_config.json of their own)."""
    config = folder / "adapter_config.json"
    return config.is_file() and "peft_type" in json.loads(config.read_text())


def assert_stock_peft_reload(cfg: Any, run: RunDir) -> None:
    """A PEFT adapter: PeftModel.from_pretrained on a fresh base gives the logits of the method's own reload (what
    generate uses)."""
    from peft import PeftModel

    from engine.generate import load_trained_model
    from engine.models import load_base_model

    stock = PeftModel.from_pretrained(load_base_model(cfg, None), str(run.weights_dir)).eval()
    own = load_trained_model(run)[0].eval()
    ids = torch.tensor([[1, 40, 41, 42, 43, 44]])
    with torch.no_grad():
        expected = own(input_ids=ids.to(next(own.parameters()).device)).logits.float().cpu()
        got = stock(input_ids=ids).logits.float()
    assert torch.allclose(got, expected, atol=1e-3), (got - expected).abs().max()


@pytest.mark.parametrize("arch,method", CASES)
def test_method_defaults_train_every_architecture(arch: str, method: str, model_folders, store,
                                                  learnable_dataset) -> None:
    from engine.generate import generate
    from engine.models import load_base_model

    specific = {"placement": "both"} if method == "adapters-both" else {}
    method = method.split("-")[0]
    if method == "qlora":
        pytest.importorskip("bitsandbytes")
    cfg = make_config(method, base_model=str(model_folders[arch]), hardware={"mixed_precision": "no"},
                      training={"max_steps": 2, "batch_size": 2, "max_seq_length": 64}, data={"eval_split": 0.2},
                      method_specific=specific)
    run, events = run_in_process(store, cfg, learnable_dataset)
    log = [e.message for e in events if e.type == "log"]
    errors = [e for e in events if e.type == "error"]
    if method == "qlora" and errors and errors[0].kind == "unsupported_hardware":
        pytest.skip(errors[0].message)
    assert not errors, (errors, log)
    started = events[0]
    assert isinstance(started, RunStarted) and started.trainable_params > 0
    assert (started.trainable_params == started.total_params) == (method == "full_finetune")
    losses = [e.loss for e in events if isinstance(e, Step)]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses), losses
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    if method in ("lora", "qlora"):
        targets = AUTO_TARGETS[arch]
        assert any(", ".join(targets) in m and '"auto"' in m for m in log), log
    weights = saved_tensors(run.weights_dir)
    assert weights and all(torch.isfinite(t.float()).all() for t in weights.values())
    zero_init = {"lora": "lora_B", "qlora": "lora_B", "adapters": ".up.", "adalora": "lora_E"}.get(method)
    if zero_init:  # initialised to zero, so non-zero proves the trained weights were saved
        assert any(zero_init in k and t.abs().sum() > 0 for k, t in weights.items()), list(weights)
    if method == "ia3":  # the scaling vectors start at 1
        assert any("ia3_l" in k and (t.float() - 1).abs().sum() > 0 for k, t in weights.items()), list(weights)
    if is_peft_adapter(run.weights_dir) and method != "qlora":  # (QLoRA's base is 4-bit)
        assert_stock_peft_reload(cfg, run)
    if method == "lora":  # the saved adapter reloads through PEFT onto a fresh base, each targeted layer wrapped
        from peft import PeftModel

        reloaded = PeftModel.from_pretrained(load_base_model(cfg, None), str(run.weights_dir))
        adapted = {n.split(".lora_A.")[0].rsplit(".", 1)[-1] for n, _ in reloaded.named_parameters() if ".lora_A." in n}
        assert adapted == set(targets)
    result = generate(run, "Say the greeting.", max_new_tokens=3)  # reload as the app does, and generate
    assert isinstance(result["completion"], str)


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "phi3"])
def test_wrong_target_modules_lists_the_layers_that_exist(arch: str, model_folders) -> None:
    with pytest.raises(EngineError) as info:
        build_on(model_folders[arch], "lora", target_modules=["q_proj", "nope"])
    error = info.value
    assert error.kind == "config" and "['q_proj', 'nope']" in error.message and arch in error.message
    assert AUTO_TARGETS[arch][0] in error.hint and "lm_head" not in error.hint and '"auto"' in error.hint
    if arch == "gpt2":
        assert "c_attn (Conv1D)" in error.hint and "c_fc (Conv1D)" in error.hint


def test_a_dotted_suffix_names_one_of_two_layers_of_the_same_name(model_folders) -> None:
    """GPT-2 has c_proj in attention and in the MLP: "mlp.c_proj" (as PEFT matches it) adapts only the MLP's."""
    _, model = build_on(model_folders["gpt2"], "lora", target_modules=["mlp.c_proj"])
    adapted = {n.split(".lora_A.")[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    assert adapted and all(n.endswith("mlp.c_proj") for n in adapted)
    with pytest.raises(EngineError, match="not found"):
        build_on(model_folders["gpt2"], "lora", target_modules=["mlp.q_proj"])


def test_auto_targets_and_conv1d_fan_in_fan_out(model_folders) -> None:
    """GPT-2's c_attn is a Conv1D: LoRA wraps it with fan_in_fan_out and its output changes once B is non-zero."""
    _, model = build_on(model_folders["gpt2"], "lora")
    config = model.peft_config["default"]
    assert config.target_modules == {"c_attn"} and config.fan_in_fan_out
    ids = torch.tensor([[1, 20, 30, 40]])
    before = model(ids).logits
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.add_(0.5)
    assert not torch.allclose(model(ids).logits, before)
