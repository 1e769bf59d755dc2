"""The training loop: optimizer and schedule, accumulation, clipping, precision, eval, checkpoints, cancel."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from engine.batching import batch_order, make_batch, real_tokens
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.control import Control
from engine.data import Example
from engine.errors import Cancelled
from engine.models import Runtime
from engine.protocol import Checkpoint, Eval, Event, Step


@dataclass
class Collate:
    """Builds one batch from example indices (picklable, so DataLoader workers can run it)."""

    examples: list[Example]
    mode: str
    pad_id: int

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return make_batch(self.examples, indices, self.mode, self.pad_id)


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    losses: list[float] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    elapsed_before_s: float = 0.0
    tokens: int = 0


def build_optimizer(model: Any, training: Any) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name or name.endswith("bias") else decay).append(param)
    groups = [{"params": decay, "weight_decay": training.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if training.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=training.learning_rate, momentum=0.9)
    if training.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=training.learning_rate, relative_step=False, scale_parameter=False)
    return torch.optim.AdamW(groups, lr=training.learning_rate)


def steps_per_epoch(n_examples: int, batch_size: int, accumulation: int) -> int:
    return max(1, math.ceil(math.ceil(n_examples / batch_size) / accumulation))


class Trainer:
    """Runs the loop for one run; every setting of training/hardware/monitoring is honoured here."""

    def __init__(self, model: Any, impl: Any, cfg: Any, runtime: Runtime, train: list[Example],
                 eval_set: list[Example], pad_id: int, padding_mode: str, emit: Callable[[Event], None],
                 control: Control, checkpoints_dir: Path, external_log: Callable[[dict[str, float], int], None]):
        self.model, self.impl, self.cfg, self.runtime = model, impl, cfg, runtime
        self.train_set, self.eval_set, self.pad_id, self.mode = train, eval_set, pad_id, padding_mode
        self.emit, self.control, self.checkpoints_dir, self.external_log = emit, control, checkpoints_dir, external_log
        t = cfg.training
        self.per_epoch = steps_per_epoch(len(train), t.batch_size, t.gradient_accumulation_steps)
        self.total_steps = t.max_steps if t.max_steps > 0 else self.per_epoch * t.epochs
        self.optimizer = build_optimizer(model, t)
        from transformers import get_scheduler

        self.scheduler = get_scheduler(t.lr_scheduler, self.optimizer, num_warmup_steps=t.warmup_steps,
                                       num_training_steps=self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if runtime.precision == "fp16" else None
        self.state = LoopState()

    def resume_from(self, folder: Path) -> None:
        self.state = LoopState(**load_checkpoint(folder, self.model, self.optimizer, self.scheduler))

    def _autocast(self) -> Any:
        dtype = self.runtime.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.runtime.device.type, dtype=dtype)

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = {k: v.to(self.runtime.device, non_blocking=True) for k, v in batch.items()}
        with self._autocast():
            return self.model(**batch, use_cache=False).loss

    def evaluate(self) -> float | None:
        if not self.eval_set:
            return None
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for indices in batch_order(self.eval_set, self.cfg.training.batch_size, 0, 0, "group_by_length"):
                batch = make_batch(self.eval_set, indices, "padded", self.pad_id)
                n = int((batch["labels"][:, 1:] != -100).sum())
                total += float(self._forward(batch)) * n
                count += n
        self.model.train()
        loss = total / max(count, 1)
        self.state.eval_losses.append(loss)
        self.emit(Eval(step=self.state.step, eval_loss=loss, perplexity=math.exp(min(loss, 50))))
        self.external_log({"eval/loss": loss}, self.state.step)
        return loss

    def save(self) -> Path:
        folder = self.checkpoints_dir / f"step-{self.state.step}"
        save_checkpoint(folder, self.model, self.impl, self.optimizer, self.scheduler, vars(self.state))
        self.emit(Checkpoint(step=self.state.step, path=str(folder)))
        return folder

    def fit(self) -> LoopState:
        """Train until total_steps; raises Cancelled after saving a checkpoint when asked to stop."""
        t, mon, st = self.cfg.training, self.cfg.monitoring, self.state
        accumulation = t.gradient_accumulation_steps
        self.model.train()
        start = time.perf_counter()
        session_start_step = st.step
        window_tokens, window_start, window_losses = 0, time.perf_counter(), []
        while st.step < self.total_steps:
            batches = batch_order(self.train_set, t.batch_size, t.seed, st.epoch, self.mode)
            groups = [batches[i:i + accumulation] for i in range(0, len(batches), accumulation)]
            loader = self._loader([ind for g in groups[st.batch_in_epoch:] for ind in g])
            for group_index in range(st.batch_in_epoch, len(groups)):
                if self.control.cancel_requested.is_set():
                    self._finish_window(window_losses, window_tokens, window_start, start, session_start_step)
                    self.save()
                    raise Cancelled(self.control.reason)
                micro_losses = []
                for _ in groups[group_index]:
                    batch = next(loader)
                    n_tokens = real_tokens(batch)
                    window_tokens += n_tokens
                    st.tokens += n_tokens
                    loss = self._forward(batch) / len(groups[group_index])
                    (self.scaler.scale(loss) if self.scaler else loss).backward()
                    micro_losses.append(float(loss.detach()) * len(groups[group_index]))
                grad_norm = self._optimizer_step(t.max_grad_norm)
                st.step += 1
                st.batch_in_epoch = group_index + 1
                step_loss = sum(micro_losses) / len(micro_losses)
                window_losses.append(step_loss)
                self._last_grad_norm = grad_norm
                if st.step % mon.logging_steps == 0 or st.step == self.total_steps:
                    self._finish_window(window_losses, window_tokens, window_start, start, session_start_step)
                    window_tokens, window_start, window_losses = 0, time.perf_counter(), []
                if mon.eval_steps and st.step % mon.eval_steps == 0 and st.step < self.total_steps:
                    self.evaluate()
                if mon.save_steps and st.step % mon.save_steps == 0 and st.step < self.total_steps:
                    self.save()
                if st.step >= self.total_steps:
                    break
            else:
                st.epoch += 1
                st.batch_in_epoch = 0
        st.elapsed_before_s += time.perf_counter() - start
        return st

    def _loader(self, batches: list[list[int]]) -> Iterator[dict[str, torch.Tensor]]:
        """Collated batches in order; hardware.dataloader_num_workers > 0 collates in worker processes."""
        collate = Collate(self.train_set, self.mode, self.pad_id)
        workers = self.cfg.hardware.dataloader_num_workers
        if workers == 0 or not batches:
            return (collate(indices) for indices in batches)
        from torch.utils.data import DataLoader

        # spawn, not fork: forking a process whose OpenMP pool and threads are running can deadlock the workers
        return iter(DataLoader(batches, batch_size=None, shuffle=False, num_workers=workers, collate_fn=collate,
                               pin_memory=self.runtime.device.type == "cuda", multiprocessing_context="spawn",
                               generator=torch.Generator().manual_seed(0)))  # leaves the global RNG alone

    def _optimizer_step(self, max_norm: float) -> float | None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(norm)
        return value if math.isfinite(value) else None

    def _finish_window(self, losses: list[float], tokens: int, window_start: float, start: float,
                       session_start_step: int) -> None:
        if not losses:
            return
        st = self.state
        now = time.perf_counter()
        elapsed = st.elapsed_before_s + (now - start)
        done = st.step - session_start_step
        eta = (now - start) / done * (self.total_steps - st.step) if done else None
        loss = sum(losses) / len(losses)
        st.losses.append(loss)
        lr = self.scheduler.get_last_lr()[0]
        self.emit(Step(step=st.step, epoch=round(st.epoch + st.batch_in_epoch / max(1, self.per_epoch), 4),
                       loss=loss, learning_rate=lr, grad_norm=self._last_grad_norm,
                       tokens_per_s=tokens / max(now - window_start, 1e-9), elapsed_s=round(elapsed, 3),
                       eta_s=None if eta is None else round(eta, 2), total_steps=self.total_steps,
                       tokens=st.tokens))
        self.external_log({"train/loss": loss, "train/learning_rate": lr}, st.step)
