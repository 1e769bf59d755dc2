"""The training loop: accumulation, clipping, precision, divergence, eval, early stopping, checkpoints, cancel."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from engine.batching import batch_order, make_batch, real_tokens
from engine.checkpoint import check_world, load_checkpoint, save_checkpoint, save_weights
from engine.checkpoints_policy import complete_checkpoints, copy_weights, rotate
from engine.control import Control
from engine.data import Example
from engine.divergence import DivergenceGuard
from engine.errors import Cancelled, Diverged
from engine.loss import summed_loss, target_tokens
from engine.models import Runtime
from engine.optim import build_optimizer, build_scheduler, optimizer_step, planned_steps, steps_per_epoch
from engine.protocol import Checkpoint, Eval, Event, Log, Step, add_change_points


def global_training(training: Any, world_size: int) -> Any:
    """The training settings as the step count sees them: every process's batch in one."""
    return training if world_size == 1 else training.model_copy(update={"batch_size": training.batch_size * world_size})


@dataclass
class Collate:
    """Builds one batch from example indices (picklable, so DataLoader workers can run it)."""

    examples: list[Example]
    mode: str
    pad_id: int

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return make_batch(self.examples, indices, self.mode, self.pad_id)


class BatchIndices(torch.utils.data.Dataset[list[int]]):
    """The batches of an epoch, each a list of example indices, as a map-style dataset for DataLoader workers."""

    def __init__(self, batches: list[list[int]]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> list[int]:
        return self.batches[index]


@dataclass
class LoopState:
    """Where the loop is; saved in every checkpoint (trainer_state.json) and restored on resume."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    losses: list[float] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    elapsed_before_s: float = 0.0  # training time of earlier segments (a checkpoint stores the total so far)
    tokens: int = 0
    recent_losses: list[float] = field(default_factory=list)  # the loss-spike check's window
    best_eval_loss: float | None = None
    best_eval_step: int | None = None
    evals_since_best: int = 0
    last_eval_step: int | None = None
    stopped_early: bool = False
    stop_reason: str = ""  # why it stopped early, in words (early-stopping patience, or a viewer's stop after eval)
    # the method's figures over time (impl.after_optimizer_step): name -> [[step, value], ...], a point per change
    method_metrics: dict[str, list[list[float]]] = field(default_factory=dict)

    def record_method_metrics(self, figures: dict[str, float]) -> None:
        add_change_points(self.method_metrics, self.step, figures)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class _Window:
    """Steps since the last step event."""

    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    start: float = field(default_factory=time.perf_counter)
    grad_norm: float | None = None
    method_metrics: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Runs the loop for one run; every setting of training/hardware/monitoring is honoured here."""

    def __init__(self, model: Any, impl: Any, cfg: Any, runtime: Runtime, train: list[Example],
                 eval_set: list[Example], pad_id: int, padding_mode: str, emit: Callable[[Event], None],
                 control: Control, checkpoints_dir: Path, external_log: Callable[[dict[str, float], int], None],
                 world_size: int = 1):
        self.model, self.impl, self.cfg, self.runtime = model, impl, cfg, runtime
        self.train_set, self.eval_set, self.pad_id, self.mode = train, eval_set, pad_id, padding_mode
        self.emit, self.control, self.checkpoints_dir, self.external_log = emit, control, checkpoints_dir, external_log
        t = cfg.training
        self.world_size = world_size  # processes sharing each step (their batches together make the global one)
        self.per_epoch = steps_per_epoch(len(train), t.batch_size * world_size, t.gradient_accumulation_steps)
        self.total_steps = planned_steps(len(train), global_training(t, world_size))
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(model, t, impl, cfg)
        self.scheduler = build_scheduler(self.optimizer, t, self.total_steps)
        # Weights already in half precision (pure bf16): no autocast, and no fp16 loss scaling (it needs fp32 grads).
        self.half_weights = bool(self.params) and all(p.dtype in (torch.bfloat16, torch.float16) for p in self.params)
        fp16 = runtime.precision == "fp16" and not self.half_weights
        self.scaler = torch.amp.GradScaler(runtime.device.type) if fp16 else None
        self.state = LoopState()
        self.guard = DivergenceGuard(cfg.monitoring.loss_spike_factor, self.state.recent_losses, self._kept_note)
        self._segment_start: float | None = None
        self.close_external: Callable[[], None] | None = None  # closes the external metric sinks (set by the runner)
        self.data_format = ""  # the training data's format, for the summary (set by the runner)
        self.planned_peak_bytes = 0  # the memory planner's estimate (set by the runner)
        self.baseline_rss_mb = 0.0  # on CPU: the process's memory before the model loaded (set by the runner)
        self.task_eval: Any = None  # engine.task_eval.TaskEval: monitoring.eval_tasks (set by the runner)
        self.live: Any = None  # engine.live_controls.LiveControls: the run folder's control requests (set by the runner)

    def resume_from(self, folder: Path) -> None:
        check_world(folder, self.world_size)
        data = load_checkpoint(folder, self.model, self.optimizer, self.scheduler, self.scaler)
        self.state = LoopState.from_dict(data)
        self.guard.recent = self.state.recent_losses

    def elapsed(self) -> float:
        """Training time across every segment of the run (a resumed run carries the earlier ones)."""
        running = time.perf_counter() - self._segment_start if self._segment_start is not None else 0.0
        return self.state.elapsed_before_s + running

    def log(self, level: str, message: str) -> None:
        self.emit(Log(level=level, message=message))

    def _autocast(self) -> Any:
        dtype = self.runtime.autocast_dtype
        if dtype is None or self.half_weights:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.runtime.device.type, dtype=dtype)

    def _loss_sum(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Summed next-token loss of one batch (divided by the step's target tokens by the caller)."""
        from engine.loss import chunked_loss_sum, chunked_supported

        batch = {k: v.to(self.runtime.device, non_blocking=True) for k, v in batch.items()}
        labels = batch.pop("labels")
        if chunked_supported(self.model, batch, self._autocast):  # the logits of one chunk of rows at a time
            return chunked_loss_sum(self.model, batch, labels, self._autocast)
        with self._autocast():  # the plain path: full logits (a model whose logits the chunks cannot reproduce)
            logits = self.model(**batch, use_cache=False).logits
        return summed_loss(logits, labels)

    def accumulate(self, micro_batches: list[dict[str, torch.Tensor]]) -> tuple[float, int]:
        """Backward over one optimizer step's micro-batches; returns (summed loss, target tokens).

        Each micro-batch's summed loss is divided by the target tokens of the whole step, so the gradient is
        that of the token-weighted mean over the step: the same as one batch holding every micro-batch.
        """
        total = sum(target_tokens(b) for b in micro_batches)
        sums = []
        for batch in micro_batches:
            loss_sum = self._loss_sum(batch)
            loss = loss_sum / max(total, 1)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            sums.append(loss_sum.detach())
        penalty = self.impl.regularization(self.model)  # once per step, on top of the token-mean loss
        if penalty is not None:
            (self.scaler.scale(penalty) if self.scaler else penalty).backward()
        return float(torch.stack(sums).sum()), total  # one device sync per step

    def evaluate(self) -> float | None:
        """Token-weighted eval loss; tracks the best one and evaluations without improvement."""
        if not self.eval_set:
            return None
        st = self.state
        self.model.eval()
        with torch.no_grad():
            loss_sum, count = self.eval_totals()
        tasks = self.task_eval.measure(self.model, st.step) if self.task_eval is not None else {}
        self.model.train()
        loss = loss_sum / max(count, 1)
        if not math.isfinite(loss):
            raise self.guard.fail(st.step, f"the eval loss became {'NaN' if math.isnan(loss) else 'infinite'}")
        st.eval_losses.append(loss)
        st.last_eval_step = st.step
        if st.best_eval_loss is None or loss < st.best_eval_loss:
            st.best_eval_loss, st.best_eval_step, st.evals_since_best = loss, st.step, 0
        else:
            st.evals_since_best += 1
        self.emit(Eval(step=st.step, eval_loss=loss, perplexity=math.exp(min(loss, 50)), tasks=tasks))
        self.external_log({"eval/loss": loss}, st.step)
        return loss

    def eval_totals(self) -> tuple[float, int]:
        """The eval set's summed loss and target tokens (under no_grad, the model in eval mode)."""
        sums, count = [], 0
        for indices in batch_order(self.eval_set, self.cfg.training.batch_size, 0, 0, "group_by_length"):
            batch = make_batch(self.eval_set, indices, "padded", self.pad_id)
            count += target_tokens(batch)
            sums.append(self._loss_sum(batch))
        return float(torch.stack(sums).sum()), count

    def save(self) -> Path:
        """Checkpoint the current step (never NaN weights), then drop those beyond monitoring.save_total_limit."""
        st = self.state
        if not self._weights_finite():
            raise self.guard.fail(st.step, "the weights became NaN or infinite")
        folder = self.checkpoints_dir / f"step-{st.step}"
        state = {**asdict(st), "elapsed_before_s": self.elapsed(), **self.checkpoint_state()}
        save_checkpoint(folder, self.model, self.impl, self.optimizer, self.scheduler, state, self.scaler)
        self.emit(Checkpoint(step=st.step, path=str(folder)))
        protect = {st.best_eval_step} if st.best_eval_step is not None else set()
        rotate(self.checkpoints_dir, self.cfg.monitoring.save_total_limit, protect)
        return folder

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint records beyond the loop state (a multi-process run: its world size)."""
        return {}

    def _weights_finite(self) -> bool:
        if not self.params:
            return True
        return bool(torch.stack([p.detach().isfinite().all() for p in self.params]).all())

    def _kept_note(self) -> str:
        found = complete_checkpoints(self.checkpoints_dir)
        if not found:
            return "no checkpoint was saved before it and weights/ was not written"
        last = max(found)
        return f"the last good checkpoint, checkpoints/{found[last].name}, is kept and weights/ was not written"

    def fit(self) -> LoopState:
        """Train until total_steps (or an early stop); raises Cancelled after saving a checkpoint when asked to
        stop, and Diverged (nothing of the bad step saved) when the loss or gradients go non-finite or spike."""
        t, st = self.cfg.training, self.state
        self.model.train()
        self._segment_start = time.perf_counter()
        session_start_step = st.step
        window = _Window()
        try:
            while st.step < self.total_steps and not st.stopped_early:
                groups = self.epoch_groups(st.epoch)
                loader = self._loader([ind for g in groups[st.batch_in_epoch:] for ind in g])
                for group_index in range(st.batch_in_epoch, len(groups)):
                    if self.stop_requested():
                        self._log_window(window, session_start_step)
                        self.save()
                        raise Cancelled(self.control.reason)
                    micro = [next(loader) for _ in groups[group_index]]
                    step = st.step + 1
                    loss_sum, n_targets = self.accumulate(micro)
                    step_loss = loss_sum / max(n_targets, 1)
                    self.guard.check_loss(step, step_loss)
                    window.grad_norm, window.method_metrics = self._optimizer_step(step, t.max_grad_norm)
                    st.step, st.batch_in_epoch = step, group_index + 1
                    st.record_method_metrics(window.method_metrics)
                    n_tokens = self.step_tokens(micro)
                    st.tokens += n_tokens
                    window.tokens += n_tokens
                    window.losses.append(step_loss)
                    self.guard.record(step_loss)
                    if st.step % self.cfg.monitoring.logging_steps == 0 or st.step == self.total_steps:
                        self._log_window(window, session_start_step)
                        window = _Window()
                    if self._after_step() or st.step >= self.total_steps:
                        break
                else:
                    st.epoch += 1
                    st.batch_in_epoch = 0
        except Diverged:
            self._log_window(window, session_start_step)  # the good steps since the last step event
            raise
        self._log_window(window, session_start_step)
        return st

    def epoch_groups(self, epoch: int) -> list[list[list[int]]]:
        """One epoch's optimizer steps, each the example indices of its micro-batches."""
        t = self.cfg.training
        batches = batch_order(self.train_set, t.batch_size, t.seed, epoch, self.mode)
        size = t.gradient_accumulation_steps
        return [batches[i:i + size] for i in range(0, len(batches), size)]

    def stop_requested(self) -> bool:
        """Whether to checkpoint and stop before the next step (a multi-process run agrees across ranks)."""
        return self.control.cancel_requested.is_set()

    def step_tokens(self, micro_batches: list[dict[str, torch.Tensor]]) -> int:
        """Real tokens the step trained on (every rank's, in a multi-process run)."""
        return sum(real_tokens(b) for b in micro_batches)

    def _after_step(self) -> bool:
        """Periodic eval and checkpoint (a new best eval is checkpointed too); True to stop early."""
        mon, st = self.cfg.monitoring, self.state
        if st.step >= self.total_steps:  # the end of the run evaluates and saves; waiting requests are answered
            if self.live is not None:
                self.live.at_last_step()
            return False
        new_best = False
        if mon.eval_steps and st.step % mon.eval_steps == 0:
            self.evaluate()
            new_best = st.best_eval_step == st.step
        saved = bool(mon.save_steps and (st.step % mon.save_steps == 0 or new_best))
        if saved:
            self.save()
        if self.live is not None and self.live.after_step(saved):  # checkpoint now / stop after this eval
            return True
        patience = mon.early_stopping_patience
        if patience and st.last_eval_step == st.step and st.evals_since_best >= patience:
            st.stopped_early = True
            st.stop_reason = f"no better eval loss in {patience} evaluation(s) (early_stopping_patience)"
            self.log("info", f"stopping early at step {st.step}: no better eval loss in {patience} evaluation(s) "
                             f"(best {st.best_eval_loss:.4f} at step {st.best_eval_step})")
            return True
        return False

    def finish(self, weights_dir: Path) -> dict[str, Any]:
        """Final eval (unless this step was just evaluated) and weights/: the best-eval checkpoint's weights
        when evaluation found a better model earlier than the final one, else the final weights."""
        st = self.state
        final_eval = st.eval_losses[-1] if st.last_eval_step == st.step and st.eval_losses else self.evaluate()
        best = complete_checkpoints(self.checkpoints_dir).get(st.best_eval_step) if st.best_eval_step is not None else None
        better_earlier = (final_eval is not None and st.best_eval_loss is not None and st.best_eval_step != st.step
                          and st.best_eval_loss < final_eval)
        if better_earlier and best is not None:
            copy_weights(best, weights_dir)
            source, step = "best_eval", st.best_eval_step
            self.log("info", f"saved the best-eval weights (step {step}, eval loss {st.best_eval_loss:.4f}; final "
                             f"eval loss {final_eval:.4f}) to {weights_dir}")
        else:
            if better_earlier:
                self.log("warning", f"the best eval loss was at step {st.best_eval_step}, but no checkpoint of it "
                                    "was kept (monitoring.save_steps is 0): saving the final weights")
            if not self._weights_finite():
                raise self.guard.fail(st.step, "the weights became NaN or infinite")
            save_weights(self.impl, self.model, weights_dir)
            source, step = "final", st.step
            self.log("info", f"saved trained weights to {weights_dir}")
        own = self.impl.summary(self.model)
        return {"final_eval_loss": final_eval, "best_eval_step": st.best_eval_step, "weights_step": step,
                "weights_from": source, "stopped_early": st.stopped_early,
                **({"stop_reason": st.stop_reason} if st.stopped_early and st.stop_reason else {}),
                **({"method": own} if own else {})}

    def _loader(self, batches: list[list[int]]) -> Iterator[dict[str, torch.Tensor]]:
        """Collated batches in order; hardware.dataloader_num_workers > 0 collates in worker processes."""
        collate = Collate(self.train_set, self.mode, self.pad_id)
        workers = self.cfg.hardware.dataloader_num_workers
        if workers == 0 or not batches:
            return (collate(indices) for indices in batches)
        from torch.utils.data import DataLoader

        # spawn, not fork: forking a process whose OpenMP pool and threads are running can deadlock the workers
        return iter(DataLoader(BatchIndices(batches), batch_size=None, shuffle=False, num_workers=workers, collate_fn=collate,
                               pin_memory=self.runtime.device.type == "cuda", multiprocessing_context="spawn",
                               generator=torch.Generator().manual_seed(0)))  # leaves the global RNG alone

    def _optimizer_step(self, step: int, max_norm: float) -> tuple[float | None, dict[str, float]]:
        """Clip and step, then the method's per-step hook (gradients still there); returns the gradient norm and
        the method's figures. Without loss scaling a non-finite gradient norm is divergence (no update); with it,
        an overflowed step updates nothing and does not advance the schedule."""
        norm, skipped = optimizer_step(
            self.optimizer, self.scheduler, self.scaler,
            lambda: torch.nn.utils.clip_grad_norm_(self.params, max_norm if max_norm > 0 else float("inf")),
            lambda value: self.guard.check_grad_norm(step, value))
        # a skipped step's gradients are infinite: the method's schedule (AdaLoRA's importance scores) skips it too
        figures = {} if skipped else self.impl.after_optimizer_step(self.model, step)
        self.optimizer.zero_grad(set_to_none=True)
        return (norm if math.isfinite(norm) else None), dict(figures)

    def _log_window(self, window: _Window, session_start_step: int) -> None:
        if not window.losses:
            return
        st = self.state
        now = time.perf_counter()
        segment = now - (self._segment_start or now)
        done = st.step - session_start_step
        eta = segment / done * (self.total_steps - st.step) if done else None
        loss = sum(window.losses) / len(window.losses)
        window.losses = []
        st.losses.append(loss)
        lr = self.scheduler.get_last_lr()[0]
        self.emit(Step(step=st.step, epoch=round(st.epoch + st.batch_in_epoch / max(1, self.per_epoch), 4),
                       loss=loss, learning_rate=lr, grad_norm=window.grad_norm,
                       tokens_per_s=window.tokens / max(now - window.start, 1e-9), elapsed_s=round(self.elapsed(), 3),
                       eta_s=None if eta is None else round(eta, 2), total_steps=self.total_steps,
                       tokens=st.tokens, method_metrics=window.method_metrics))
        self.external_log({"train/loss": loss, "train/learning_rate": lr}, st.step)
