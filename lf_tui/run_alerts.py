"""Alerts while a run trains: the eval loss rose N evaluations in a row, or a step's loss spiked above the recent
mean (well below the engine's divergence limit, which ends the run). Plain: the run view rings the bell and
notifies, `lf-tui attach` prints them; both feed the same events here."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

EVAL_RISES = 2  # alert when the eval loss rose this many evaluations in a row
SPIKE_FACTOR = 1.5  # alert when a step's loss exceeds this multiple of the mean of the last SPIKE_WINDOW steps
SPIKE_WINDOW = 20
SPIKE_MIN_HISTORY = 5


@dataclass
class Alert:
    step: int
    kind: str  # "eval_rising" | "loss_spike"
    message: str
    ts: float = 0.0  # when the event that raised it was written (a replayed alert is old news)


@dataclass
class AlertWatch:
    """Feed it every step loss and eval loss in order; it returns the alerts they raise (each condition once
    until it clears, so a long rise is one alert, not one per evaluation)."""

    eval_rises: int = EVAL_RISES
    spike_factor: float = SPIKE_FACTOR
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=SPIKE_WINDOW))
    evals: list[float] = field(default_factory=list)
    rising_said: bool = False
    spiking: bool = False
    raised: list[Alert] = field(default_factory=list)

    def step(self, step: int, loss: float) -> list[Alert]:
        out = []
        if len(self.recent) >= SPIKE_MIN_HISTORY and self.spike_factor > 0:
            mean = sum(self.recent) / len(self.recent)
            spiked = mean > 0 and loss > self.spike_factor * mean
            if spiked and not self.spiking:
                out.append(Alert(step, "loss_spike", f"loss spiked to {loss:.4g} at step {step}: "
                                                     f"{loss / mean:.1f}x the mean {mean:.4g} of the last "
                                                     f"{len(self.recent)} steps"))
            self.spiking = spiked
        self.recent.append(loss)
        self.raised += out
        return out

    def eval(self, step: int, eval_loss: float) -> list[Alert]:
        self.evals.append(eval_loss)
        tail = self.evals[-(self.eval_rises + 1):]
        rising = (self.eval_rises > 0 and len(tail) == self.eval_rises + 1
                  and all(b > a for a, b in zip(tail, tail[1:])))
        out = []
        if rising and not self.rising_said:
            out.append(Alert(step, "eval_rising", f"eval loss rose {self.eval_rises} evaluations in a row "
                                                  f"({' → '.join(f'{v:.4g}' for v in tail)}) at step {step}: "
                                                  "overfitting? stop after the next evaluation keeps a checkpoint"))
        self.rising_said = rising
        self.raised += out
        return out

    def truncate(self, step: int) -> None:
        """A resumed run redoes the steps after its checkpoint: start the watch over (no stale alerts)."""
        self.recent.clear()
        self.evals.clear()
        self.rising_said = self.spiking = False
