"""The method contract: what a method folder's implementation provides, and what the engine hands it (MethodContext).

A method folder's implementation.py defines a subclass of `MethodImplementation` and exposes an instance of it as
`IMPLEMENTATION`; the catalogue loads that file by path (`Method.implementation()`). The engine calls only what this
module declares: the required hooks, the optional hooks (whose defaults here are what the engine does for a method
that does not override them) and the flags. It imports no torch, not even for type checking (the UI imports the
catalogue, and the layering contracts keep the ML stack out of the UI's import graph): `Model` and `Tensor` name
the torch types the hooks take.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from methods.config_models import MethodConfigBase

Model = Any  # a torch.nn.Module: a transformers model, or a PEFT one wrapping it
Tensor = Any  # a torch.Tensor

IMPLEMENTATION_ATTRIBUTE = "IMPLEMENTATION"  # the name implementation.py binds its MethodImplementation instance to


class MethodContext(ABC):
    """What a method implementation may use from the engine (methods import nothing of the engine's).

    The engine provides the concrete context (engine.runner.EngineContext); `cfg` is the validated config and
    `runtime` the engine's resolved runtime (its `.device` is the torch device the run trains on).
    """

    cfg: MethodConfigBase
    runtime: Any
    total_steps: int = 0  # the optimizer steps the run will take (known before apply(); 0 outside training)

    @abstractmethod
    def log(self, message: str, level: str = "info") -> None:
        """Report a line to the run's event stream."""

    @abstractmethod
    def fail(self, kind: str, message: str, hint: str = "") -> Exception:
        """An error the run reports as `kind` with `hint` (the method raises it)."""

    @abstractmethod
    def load_base_model(self, **kwargs: Any) -> Model:
        """The config's base model, as the engine loads it; kwargs go to from_pretrained (quantisation, device_map)."""

    @abstractmethod
    def check_target_modules(self, model: Model, target: str | list[str]) -> None:
        """Fail clearly when `target` names modules `model` does not have."""


class MethodImplementation(ABC):
    """A fine-tuning method as the engine drives it: build (load_model -> apply), train, save, reload, generate."""

    # Flags (class attributes; a subclass sets the ones that differ).
    trains_base_weights: ClassVar[bool] = False
    """The method updates the base model's own weights (the base then loads with fp32 master weights on a GPU)."""
    handles_gradient_checkpointing: ClassVar[bool] = False
    """apply() enables gradient checkpointing itself when the config asks; else the engine enables it before apply()."""
    places_model: ClassVar[bool] = False
    """load_model() already puts the model on the run's device (device_map); else the engine moves it after apply()."""
    merge_refusal: ClassVar[str] = ("this method's trained weights are not a change to the base model's own weights, "
                                    "so they cannot be folded into them")
    """Why merge() returns None (shown when an export with --merged is refused); a method that cannot merge says why."""

    # Required hooks.
    @abstractmethod
    def apply(self, model: Model, cfg: Any, ctx: MethodContext) -> Model:
        """Adapt the loaded base model for training (freeze, wrap, insert modules); returns the model to train."""

    @abstractmethod
    def save(self, model: Model, folder: Path) -> None:
        """Write the trained weights (what load_trained reads) into `folder`: safetensors files."""

    @abstractmethod
    def load_trained(self, base_model: Model, folder: Path, ctx: MethodContext) -> Model:
        """The trained model: `base_model` (loaded by load_model) with the weights save() wrote to `folder`."""

    # Optional hooks: the defaults are the engine's usual behaviour.
    def load_model(self, cfg: Any, ctx: MethodContext) -> Model:
        """Load the base model before apply(); the default loads it as every method does."""
        return ctx.load_base_model()

    def build_optimizer(self, model: Model, cfg: Any, optimizer_cls: type, **optimizer_kwargs: Any) -> Any:
        """The optimizer for the model to train, or None (the default) for the engine's: `optimizer_cls` (AdamW,
        SGD or Adafactor, as training.optimizer says) over the trainable parameters, no weight decay on norms and
        biases. `optimizer_kwargs` hold lr, weight_decay and the class's own settings; a method that splits the
        parameters into groups of its own (LoRA+: a higher learning rate for B) builds it here."""
        return None

    def regularization(self, model: Model) -> Tensor | None:
        """A term added to each optimizer step's loss (AdaLoRA's orthogonality penalty); None (the default): none."""
        return None

    def after_optimizer_step(self, model: Model, step: int) -> dict[str, float]:
        """Called after each optimizer step, while the gradients are still there (before zero_grad): the method
        updates what it schedules (AdaLoRA's rank budget) and returns figures the step event carries (shown in the
        run view and, first to last, in the summary). The default does nothing and reports nothing."""
        return {}

    def summary(self, model: Model) -> dict[str, Any]:
        """Figures of the trained model the run's summary records under `method` (AdaLoRA: the final ranks); the
        default records nothing."""
        return {}

    def merge(self, folder: Path, dtype: Any, ctx: MethodContext) -> Model | None:
        """The weights save() wrote to `folder` folded into the base model's own weights: a plain transformers model
        (no adapter, nothing quantised) in `dtype` (a torch dtype) on the CPU, which `lf-tui export --merged` saves
        for a stock AutoModelForCausalLM. Load the base with `ctx.load_base_model(dtype=dtype)` (plain, never
        load_model: QLoRA merges into the de-quantised base, not into 4-bit weights) and fold in place (one copy of
        the model). None (the default): the method cannot merge, and `merge_refusal` says why."""
        return None

    def generate(self, model: Model, input_ids: Tensor, attention_mask: Tensor,
                 **kwargs: Any) -> Tensor:
        """Generate from the trained model (the one load_trained returned); the default calls model.generate."""
        return model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
