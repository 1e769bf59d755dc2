"""Divergence as a result: a NaN/infinite loss or gradient, or a loss spike, ends the run as `diverged`."""

from __future__ import annotations

import math
from typing import Callable

from engine.errors import Diverged

SPIKE_WINDOW = 20  # step losses the spike check averages over
SPIKE_MIN_HISTORY = 5  # steps seen before the spike check starts
HINT = ("lower training.learning_rate, turn gradient clipping on (training.max_grad_norm, e.g. 1.0), add "
        "warm-up steps, or train in full fp32 (hardware.mixed_precision \"no\"); then start a new run, or edit "
        "the config and resume from the last good checkpoint")


class DivergenceGuard:
    """Checks each optimizer step's loss and gradient norm before the weights are updated.

    `recent` is the loop state's list of recent step losses (kept in checkpoints, so a resumed run checks
    spikes against the same history); `kept` describes what survives, for the message.
    """

    def __init__(self, spike_factor: float, recent: list[float], kept: Callable[[], str]):
        self.spike_factor, self.recent, self.kept = spike_factor, recent, kept

    def fail(self, step: int, what: str) -> Diverged:
        return Diverged(step, f"training diverged at step {step}: {what}; {self.kept()}", HINT)

    def check_loss(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise self.fail(step, f"the loss became {_name(loss)}")
        if self.spike_factor > 0 and len(self.recent) >= SPIKE_MIN_HISTORY:
            mean = sum(self.recent) / len(self.recent)
            if mean > 0 and loss > self.spike_factor * mean:
                raise self.fail(step, f"the loss spiked to {loss:.4g}, more than monitoring.loss_spike_factor "
                                      f"({self.spike_factor:g}) x the mean {mean:.4g} of the last "
                                      f"{len(self.recent)} steps")

    def check_grad_norm(self, step: int, norm: float) -> None:
        """Only without a grad scaler: with fp16 loss scaling an overflowing gradient just skips the step."""
        if not math.isfinite(norm):
            raise self.fail(step, f"the gradient norm became {_name(norm)} (the update was not applied)")

    def record(self, loss: float) -> None:
        self.recent.append(loss)
        del self.recent[:-SPIKE_WINDOW]


def _name(value: float) -> str:
    return "NaN" if math.isnan(value) else "infinite"
