"""Bottleneck adapters in plain PyTorch: down-projection, non-linearity, up-projection, residual.

Adapters hang off each decoder layer as submodules (`adapter_mlp`, `adapter_attention`) and are applied by
forward hooks on the block's MLP and attention children (`mlp`; `self_attn`, `attn` or `attention`), so the
base model's module names and weights are untouched. Saved as safetensors + JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from methods.contract import MethodImplementation

CONFIG_FILE, WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class Bottleneck(nn.Module):
    """h + up(act(down(h))); `up` starts at zero so the adapted model starts equal to the base."""

    def __init__(self, hidden: int, size: int, activation: str, dropout: float, init_scale: float):
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.act = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(size, hidden)
        nn.init.normal_(self.down.weight, std=init_scale)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.dropout(self.act(self.down(hidden.to(self.down.weight.dtype))))).to(hidden.dtype)


def _hook(adapter: Bottleneck):
    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (adapter(output[0]), *output[1:])
        return adapter(output)

    return hook


ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")  # Llama/Qwen/Phi, GPT-2, GPT-NeoX, Bloom
MLP_NAMES = ("mlp", "feed_forward", "ffn")


def sublayer_name(layer: nn.Module, kind: str) -> str | None:
    """The child of a decoder block holding its attention ("attention") or its MLP ("mlp"), by the usual names."""
    for name in ATTENTION_NAMES if kind == "attention" else MLP_NAMES:
        if isinstance(getattr(layer, name, None), nn.Module):
            return name
    return None


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks: the first ModuleList whose items have an MLP and an attention child."""
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) and sublayer_name(module[0], "mlp") \
                and sublayer_name(module[0], "attention"):
            return list(module)
    raise ValueError(f"no decoder layers with an attention and an MLP block found in this {type(model).__name__} "
                     f"(looked for children named {ATTENTION_NAMES} and {MLP_NAMES})")


def sublayer(layer: nn.Module, kind: str) -> nn.Module:
    """The attention or MLP child of a decoder block; ValueError when it has none."""
    name = sublayer_name(layer, kind)
    if name is None:
        raise ValueError(f"a {type(layer).__name__} decoder layer has no {kind} child (looked for "
                         f"{ATTENTION_NAMES if kind == 'attention' else MLP_NAMES})")
    return getattr(layer, name)


def hidden_size(model: nn.Module) -> int:
    """The width of the model's hidden states, from its Hugging Face config."""
    config: Any = model.config
    return int(config.hidden_size)


def bottleneck_size(settings: dict[str, Any], hidden: int) -> int:
    return int(settings.get("bottleneck_size") or max(1, hidden // settings["reduction_factor"]))


def insert(model: nn.Module, settings: dict[str, Any]) -> list[Bottleneck]:
    """Insert adapters per `settings` (the method_specific dict) and return them."""
    hidden = hidden_size(model)
    size = bottleneck_size(settings, hidden)
    kinds = {"mlp": ["mlp"], "attention": ["attention"], "both": ["attention", "mlp"]}[settings["placement"]]
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    adapters = []
    for layer in decoder_layers(model):
        for kind in kinds:
            adapter = Bottleneck(hidden, size, settings["non_linearity"], settings["adapter_dropout"],
                                 settings["init_scale"]).to(device=device, dtype=torch.float32 if dtype in (
                                     torch.float16, torch.bfloat16) else dtype)
            layer.add_module(f"adapter_{kind}", adapter)
            sublayer(layer, kind).register_forward_hook(_hook(adapter))
            adapters.append(adapter)
    return adapters


def apply(model: nn.Module, cfg: Any, ctx: Any) -> nn.Module:
    for param in model.parameters():
        param.requires_grad_(False)
    settings = cfg.method_specific.model_dump()
    insert(model, settings)
    model.lf_adapter_settings = settings
    return model


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if ".adapter_" in k}


def save(model: nn.Module, folder: Path) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(model), str(folder / WEIGHTS_FILE))
    settings = dict(model.lf_adapter_settings)  # type: ignore[arg-type]
    hidden = hidden_size(model)
    settings.update(adapter_type="bottleneck", hidden_size=hidden, resolved_bottleneck_size=bottleneck_size(settings, hidden))
    (folder / CONFIG_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def load_trained(base_model: nn.Module, folder: Path, ctx: Any = None) -> nn.Module:
    """Insert adapters as saved and load their weights into `base_model`."""
    from safetensors.torch import load_file

    settings = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    insert(base_model, settings)
    base_model.lf_adapter_settings = {k: settings[k] for k in (  # type: ignore[assignment]
        "bottleneck_size", "reduction_factor", "non_linearity", "placement", "adapter_dropout", "init_scale")}
    state = load_file(str(Path(folder) / WEIGHTS_FILE))
    missing, unexpected = base_model.load_state_dict(state, strict=False)
    if unexpected or any(".adapter_" in k for k in missing):
        raise ValueError(f"{folder}: adapter weights do not match the model (unexpected {unexpected[:3]})")
    return base_model


class Adapters(MethodImplementation):
    """Bottleneck adapters in plain PyTorch, saved as safetensors + JSON."""

    merge_refusal = ("bottleneck adapters are new layers (down-projection, non-linearity, up-projection) after the "
                     "attention and MLP blocks: a non-linear function of the hidden states that no change to the base "
                     "model's own weights reproduces, so they cannot be merged")

    # the hooks are this module's functions (the method's tests call them directly)
    apply = staticmethod(apply)
    save = staticmethod(save)
    load_trained = staticmethod(load_trained)


IMPLEMENTATION = Adapters()
