"""TensorBoard sink: one event folder per run (tensorboard_log_dir/<run id>), continued by a resume."""

from __future__ import annotations

import importlib
import os
from typing import Any


class TensorBoardSink:
    """Scalars into `<log_dir>/<run_id>`; a resume from step k purges what the earlier segment wrote after k."""

    def __init__(self, log_dir: str, run_id: str, resumed_step: int | None):
        importlib.import_module("tensorboard")  # the extra itself (torch's writer says only "TensorBoard 1.15")
        from torch.utils.tensorboard import SummaryWriter

        self.path = os.path.join(log_dir, run_id)
        # purge_step: TensorBoard's readers drop the earlier files' events at or after it (a crash logged past
        # its last checkpoint); the new segment writes them again
        self.writer = SummaryWriter(log_dir=self.path, purge_step=None if resumed_step is None else resumed_step + 1)

    def scalars(self, figures: dict[str, float], step: int, walltime: float | None = None) -> None:
        for name, value in figures.items():
            self.writer.add_scalar(name, value, step, walltime=walltime)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def describe(sink: Any) -> str:
    return f"TensorBoard scalars go to {sink.path} (tensorboard --logdir {os.path.dirname(sink.path)})"
