"""Run listings read events incrementally: only appended bytes are parsed, rewritten files start over."""

from __future__ import annotations

from pathlib import Path

from engine.event_stats import scan
from engine.protocol import Finished, RunStarted, Step


def test_incremental_scan(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(RunStarted(method="lora", total_steps=9).to_line() + Step(step=1, loss=3.0).to_line())
    first = scan(path)
    assert (first.steps, first.method, first.position) == (1, "lora", path.stat().st_size)
    with open(path, "a") as fh:
        fh.write(Step(step=2, loss=2.0).to_line() + Step(step=3, loss=2.5).to_line()[:10])  # a half-written line
    second = scan(path)
    assert (second.steps, second.best_loss, second.final_loss) == (2, 2.0, 2.0) and second.partial_tail
    assert first.steps == 1  # earlier results are not mutated
    with open(path, "a") as fh:
        fh.write(Step(step=3, loss=2.5).to_line()[10:] + Finished(status="completed").to_line())
    third = scan(path)
    assert third.steps == 3 and not third.partial_tail and third.terminal.type == "finished"
    path.write_text(RunStarted(method="qlora").to_line())  # rewritten smaller: start over
    assert (scan(path).steps, scan(path).method) == (0, "qlora")
    assert scan(tmp_path / "missing.jsonl") is None
