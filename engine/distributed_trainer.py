"""The training loop of one rank of a multi-process run, through accelerate (DDP, FSDP, DeepSpeed).

Each optimizer step's global batch (batch_size x processes examples per micro-batch) is the batch a single process
would train on, split between the ranks; every rank divides its summed loss by the whole step's target tokens
(times the world size, which the gradient all-reduce averages over), so the update equals the single-process one.
Rank 0 alone emits events and writes checkpoints; the ranks agree on cancels and divergence at every step.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import torch

from engine.batching import batch_order, make_batch, real_tokens
from engine.checkpoint import SCHEDULER, check_world, load_checkpoint, restore_scaler, save_tensors
from engine.errors import EngineError
from engine.loss import summed_loss, target_tokens
from engine.optim import optimizer_step
from engine.trainer import Trainer

SHARDED_STATE = "accelerate_state"  # FSDP/DeepSpeed: accelerate's save_state (every rank's shard)


def rank_rng_file(rank: int) -> str:
    return f"rng-rank{rank}.pt"


class DistributedTrainer(Trainer):
    """Trainer whose model and optimizer are prepared by an `Accelerator` spanning every rank."""

    def __init__(self, accelerator: Any, *args: Any, **kwargs: Any):
        kwargs["world_size"] = accelerator.num_processes
        super().__init__(*args, **kwargs)
        self.accelerator = accelerator
        self.rank = accelerator.process_index
        self.sharded = accelerator.distributed_type.value in ("FSDP", "DEEPSPEED")
        self.model, self.optimizer = accelerator.prepare(self.model, self.optimizer)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    @property
    def unwrapped(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    def _sum(self, values: list[float]) -> list[float]:
        """Every rank's values added up (one all-reduce), on every rank."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
        return [float(v) for v in self.accelerator.reduce(tensor, reduction="sum").tolist()]

    def epoch_groups(self, epoch: int) -> list[list[list[int]]]:
        """The single-process run's batches at the global batch size, this rank's slice of each; a last batch
        too small to give every rank an example is left out of the epoch."""
        t, world = self.cfg.training, self.world_size
        batches = [b for b in batch_order(self.train_set, t.batch_size * world, t.seed, epoch, self.mode)
                   if len(b) >= world]
        # a full batch: slices of batch_size; the epoch's last, shorter one: as even as can be (none empty)
        mine = [batch[self.rank * len(batch) // world:(self.rank + 1) * len(batch) // world] for batch in batches]
        accumulation = t.gradient_accumulation_steps
        return [mine[i:i + accumulation] for i in range(0, len(mine), accumulation)]

    def stop_requested(self) -> bool:
        """A cancel on any rank stops every rank at the same step."""
        return self._sum([1.0 if self.control.cancel_requested.is_set() else 0.0])[0] > 0

    def step_tokens(self, micro_batches: list[dict[str, torch.Tensor]]) -> int:
        return int(self._step_tokens)

    def _loss_sum(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The wrapped model's forward (DDP and FSDP hook their communication into it), full logits."""
        batch = {k: v.to(self.accelerator.device, non_blocking=True) for k, v in batch.items()}
        labels = batch.pop("labels")
        with self._autocast():
            logits = self.model(**batch, use_cache=False).logits
        return summed_loss(logits, labels)

    def accumulate(self, micro_batches: list[dict[str, torch.Tensor]]) -> tuple[float, int]:
        """Backward over this rank's micro-batches, the gradients all-reduced after the last one only; returns the
        whole step's summed loss and target tokens (every rank's)."""
        local_targets = sum(target_tokens(b) for b in micro_batches)
        total, tokens = self._sum([float(local_targets), float(sum(real_tokens(b) for b in micro_batches))])
        self._step_tokens = tokens
        scale = self.world_size / max(total, 1.0)
        sums = []
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            with contextlib.nullcontext() if last or self.sharded else self.accelerator.no_sync(self.model):
                loss_sum = self._loss_sum(batch)
                loss = loss_sum * scale
                self.accelerator.backward(self.scaler.scale(loss) if self.scaler else loss)
            sums.append(loss_sum.detach().float())
        penalty = self.impl.regularization(self.unwrapped)
        if penalty is not None:  # every rank adds it, the all-reduce averages it back to once
            self.accelerator.backward(self.scaler.scale(penalty) if self.scaler else penalty)
        loss_total = self._sum([float(torch.stack(sums).sum())])[0]
        return loss_total, int(total)

    def _optimizer_step(self, step: int, max_norm: float) -> tuple[float | None, dict[str, float]]:
        norm, skipped = optimizer_step(
            self.optimizer, self.scheduler, self.scaler,
            lambda: self.accelerator.clip_grad_norm_(self.params, max_norm if max_norm > 0 else float("inf")),
            lambda value: self.guard.check_grad_norm(step, value))
        figures = {} if skipped else self.impl.after_optimizer_step(self.unwrapped, step)
        self.optimizer.zero_grad(set_to_none=True)
        return (norm if math.isfinite(norm) else None), dict(figures)

    def eval_totals(self) -> tuple[float, int]:
        """The eval batches shared out between the ranks (each runs as many forwards), their sums added up."""
        batches = batch_order(self.eval_set, self.cfg.training.batch_size, 0, 0, "group_by_length")
        rounds = math.ceil(len(batches) / self.world_size)
        loss_sum, count = 0.0, 0
        for r in range(rounds):
            index = r * self.world_size + self.rank
            batch = make_batch(self.eval_set, batches[min(index, len(batches) - 1)], "padded", self.pad_id)
            value = self._loss_sum(batch)
            if index < len(batches):  # a padding round (to keep the ranks in step) counts nothing
                loss_sum += float(value)
                count += target_tokens(batch)
        total_loss, total_count = self._sum([loss_sum, float(count)])
        return total_loss, int(total_count)

    def save(self) -> Path:
        """Rank 0 writes the checkpoint as a single process would (sharded strategies: every rank its shard too);
        each rank its random state; the ranks wait for each other, so a checkpoint is complete when they go on."""
        folder = self.checkpoints_dir / f"step-{self.state.step}"
        if self._sum([0.0 if self._weights_finite() else 1.0])[0] > 0:
            raise self.guard.fail(self.state.step, "the weights became NaN or infinite")
        if self.sharded:
            self.accelerator.save_state(str(folder.with_name(f".{folder.name}.shards") / SHARDED_STATE))
        with self.full_weights():
            if self.rank == 0:
                self._save_main()
        self.accelerator.wait_for_everyone()
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
        folder.mkdir(parents=True, exist_ok=True)  # another machine's run folder: its ranks' part only
        save_tensors(rng, folder / rank_rng_file(self.rank))  # a full disk: its OSError, not torch's "unexpected pos"
        self.accelerator.wait_for_everyone()
        return folder

    def full_weights(self) -> Any:
        """Every rank enters; inside, rank 0's unwrapped model holds whole weights (FSDP and ZeRO-3 gather their
        shards; DDP and ZeRO-2 hold them whole already), so the method's own save writes them as usual."""
        kind = self.accelerator.distributed_type.value
        if kind == "FSDP":
            from torch.distributed.fsdp import FullyShardedDataParallel

            return FullyShardedDataParallel.summon_full_params(self.model, writeback=False, rank0_only=True,
                                                               offload_to_cpu=True)
        if kind == "DEEPSPEED" and self.cfg.hardware.distributed.zero_stage == 3:
            import deepspeed  # type: ignore[import-not-found]

            return deepspeed.zero.GatheredParameters(list(self.unwrapped.parameters()), modifier_rank=None)
        return contextlib.nullcontext()

    def _save_main(self) -> Path:
        """Trainer.save on the unwrapped model, with the world size in the loop state and the shards moved in."""
        model = self.model
        self.model = self.unwrapped
        try:
            folder = super().save()
        finally:
            self.model = model
        shards = folder.with_name(f".{folder.name}.shards") / SHARDED_STATE
        if shards.is_dir():
            shards.rename(folder / SHARDED_STATE)
            shards.parent.rmdir()
        return folder

    def checkpoint_state(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "strategy": self.cfg.hardware.distributed.strategy}

    def resume_from(self, folder: Path) -> None:
        """Every rank loads the same checkpoint; another world size is refused (the data split would change)."""
        saved = check_world(folder, self.world_size)
        if self.cfg.hardware.distributed.num_machines > 1:
            raise EngineError("resume", "a multi-machine run cannot be resumed yet: its checkpoints are on machine 0 "
                              "only", "start a new run; the checkpoint's weights/ folder holds what was trained")
        if self.sharded:  # the shards hold model and optimizer; schedule, loss scale and loop state: rank 0's files
            self.accelerator.load_state(str(folder / SHARDED_STATE))
            self.scheduler.load_state_dict(torch.load(folder / SCHEDULER, map_location="cpu", weights_only=True))
            restore_scaler(folder, self.scaler)
            data = saved
        else:
            data = load_checkpoint(folder, self.unwrapped, self.optimizer, self.scheduler, self.scaler)
        self.restore_rank_rng(folder)
        from engine.trainer import LoopState

        self.state = LoopState.from_dict(data)
        self.guard.recent = self.state.recent_losses

    def restore_rank_rng(self, folder: Path) -> None:
        """This rank's random state as saved; a checkpoint without it is said (a warning), never silently skipped."""
        rng_file = folder / rank_rng_file(self.rank)
        if not rng_file.is_file():
            self.log("warning", f"{folder.name} has no random state for rank {self.rank} ({rng_file.name} is "
                                "missing): that rank goes on from a fresh one, so its dropout differs from an "
                                "uninterrupted run's (the weights, optimizer and data order are restored)")
            return
        rng = torch.load(rng_file, map_location="cpu", weights_only=True)
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])

    def finish(self, weights_dir: Path) -> dict[str, Any]:
        """The final eval on every rank; rank 0 writes weights/ from the unwrapped model."""
        st = self.state
        if not (st.last_eval_step == st.step and st.eval_losses):
            self.evaluate()  # every rank takes part; Trainer.finish then finds it done
        extra: dict[str, Any] = {}
        with self.full_weights():
            if self.rank == 0:
                model = self.model
                self.model = self.unwrapped
                try:
                    extra = super().finish(weights_dir)
                finally:
                    self.model = model
        self.accelerator.wait_for_everyone()
        self.model = self.unwrapped  # training is over: what follows (the deployment timing) uses the plain model
        return extra
