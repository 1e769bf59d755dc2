"""Multiple-choice tasks scored during training (monitoring.eval_tasks): at each evaluation the model in training
is scored by log-likelihood exactly as `lf-tui eval` scores it; the last scores are saved as RUN/eval/<task>.json
(the weights: the run's final ones), so the report and the Runs screen read them like an on-demand evaluation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.eval_tasks import Task, read_task, task_file
from engine.evaluate import NORMALISATION, save, score
from engine.run_store import RunDir


def load_tasks(values: list[str]) -> list[Task]:
    """Every task file read and checked before training starts (a bad line: a DataError naming file:line)."""
    from engine.errors import DataError

    tasks = []
    for value in values:
        path = task_file(value)
        if path is None:
            raise DataError(f"monitoring.eval_tasks: {value!r} is not a task file", "during training only task "
                            "files (JSONL questions, or `sample`) are scored; run lm-eval tasks with lf-tui eval")
        tasks.append(read_task(path))
    return tasks


class TaskEval:
    """Scores each task on the model at an evaluation; keeps the last scores to save at the end."""

    def __init__(self, tasks: list[Task], tokenizer: Any, runtime: Any) -> None:
        self.tasks, self.tokenizer, self.runtime = tasks, tokenizer, runtime
        self.last: dict[str, dict[str, Any]] = {}
        self.step = 0

    def measure(self, model: Any, step: int) -> dict[str, Any]:
        """{task: {acc, acc_norm, count}} for the Eval event (the model is left in eval mode: the caller's loop
        puts it back to train)."""
        import torch

        with torch.no_grad():
            self.last = {t.name: score(model, self.tokenizer, t.questions, self.runtime) for t in self.tasks}
        self.step = step
        return {name: {k: r[k] for k in ("acc", "acc_norm", "count")} for name, r in self.last.items()}

    def save(self, run_path: Path, weights_step: int, cfg: Any) -> None:
        """RUN/eval/<task>.json for the scores at `weights_step` (when the last evaluation scored those weights)."""
        if not self.last or self.step != weights_step:
            return
        run = RunDir(run_path)
        for task in self.tasks:
            result = self.last[task.name]
            save(run, {"task": task.name, "source": task.source, "run_id": run.run_id, "method": cfg.method_name,
                       "base_model": cfg.base_model, "weights": "weights", "normalisation": NORMALISATION,
                       "limit": None, "measured_at": time.time(), "during_training_step": weights_step,
                       "models": {"trained": {**result, "measured_at": time.time()}}})
