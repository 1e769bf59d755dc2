"""Optional metric sinks: TensorBoard (tensorboard_log_dir) and Weights & Biases (wandb_project)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any


def make_external_logger(monitoring: Any, run_id: str, config: dict[str, Any],
                         log: Callable[[str, str], None]) -> tuple[Callable[[dict[str, float], int], None], Callable[[], None]]:
    """Return (log_metrics, close); sinks that are not installed or configured are skipped with a log line."""
    sinks: list[Any] = []
    closers: list[Callable[[], None]] = []
    if monitoring.tensorboard_log_dir:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=os.path.join(monitoring.tensorboard_log_dir, run_id))

            def to_tensorboard(metrics: dict[str, float], step: int) -> None:
                for name, value in metrics.items():
                    writer.add_scalar(name, value, step)

            sinks.append(to_tensorboard)
            closers.append(writer.close)
            log("info", f"TensorBoard scalars go to {monitoring.tensorboard_log_dir}/{run_id}")
        except Exception as exc:
            log("warning", f"tensorboard_log_dir is set but TensorBoard is unavailable ({exc}); pip install tensorboard")
    if monitoring.wandb_project:
        configured = os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") in ("offline", "disabled")
        if importlib.util.find_spec("wandb") is None:
            log("warning", "wandb_project is set but wandb is not installed; pip install wandb")
        elif not configured:
            log("warning", "wandb_project is set but W&B is not configured (set WANDB_API_KEY or WANDB_MODE=offline)")
        else:
            import wandb

            wb = wandb.init(project=monitoring.wandb_project, name=run_id, config=config)
            sinks.append(lambda m, s: wb.log(m, step=s))
            closers.append(wb.finish)
            log("info", f"logging to W&B project {monitoring.wandb_project}")

    def log_metrics(metrics: dict[str, float], step: int) -> None:
        for sink in sinks:
            sink(metrics, step)

    def close() -> None:
        for closer in closers:
            closer()

    return log_metrics, close
