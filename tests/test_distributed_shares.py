"""Several processes without starting them: each rank's share of a step's batch, and which rank a failed run names."""

from __future__ import annotations

from engine.distributed import rank_log
from tests.conftest import make_config


def test_the_dead_rank_named_is_the_one_that_failed_first(tmp_path) -> None:
    from engine.distributed import write_rank_record
    from engine.run_store import RunDir
    from engine.supervisor import _dead_rank_error

    run = RunDir(tmp_path)
    write_rank_record(tmp_path, 0, {"status": "failed", "error": "RuntimeError: Connection closed by peer",
                                    "peer_lost": True})
    write_rank_record(tmp_path, 1, {"status": "failed", "error": "OutOfMemoryError: CUDA out of memory"})
    message, _ = _dead_rank_error(run, [], 1)
    assert message.startswith("rank 1 died: OutOfMemoryError") and str(rank_log(tmp_path, 1)) in message
    message, _ = _dead_rank_error(run, [0], 1)  # seen gone without an ending: that one, whatever the others say
    assert message.startswith("rank 0 died")
    write_rank_record(tmp_path, 1, {"status": "cancelled"})  # the rank on another machine failed: rank 0 says so
    message, hint = _dead_rank_error(run, [], 1)
    assert message.startswith("rank 0 lost contact with another rank") and "other machines" in hint


def test_each_step_is_the_single_process_batch_shared_out_between_the_ranks() -> None:
    """Every rank's slice of a step together make the single process's batch at the global size: no example
    twice, none lost, none empty (the epoch's short last batch split as evenly as it goes)."""
    from engine.batching import batch_order
    from engine.data import Example
    from engine.distributed_trainer import DistributedTrainer

    examples = [Example(list(range(3 + i % 7)), list(range(3 + i % 7))) for i in range(23)]
    cfg = make_config("lora", training={"batch_size": 2, "gradient_accumulation_steps": 2, "seed": 5})
    world = 3
    ranks = []
    for rank in range(world):
        trainer = DistributedTrainer.__new__(DistributedTrainer)  # the split alone: no process group
        trainer.cfg, trainer.world_size, trainer.rank = cfg, world, rank
        trainer.train_set, trainer.mode = examples, "group_by_length"
        ranks.append(trainer.epoch_groups(1))
    single = batch_order(examples, 2 * world, 5, 1, "group_by_length")
    flat = [[micro for group in groups for micro in group] for groups in ranks]
    assert len({len(f) for f in flat}) == 1 and len(flat[0]) == len(single)  # 23 = 3 full batches of 6 + 5
    for i, batch in enumerate(single):
        parts = [flat[r][i] for r in range(world)]
        assert all(parts) and sorted(sum(parts, [])) == sorted(batch)
