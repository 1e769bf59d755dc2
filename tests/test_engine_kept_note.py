"""One sentence says which checkpoint a failed write kept, for the checkpoint writer and the runner alike."""

from __future__ import annotations

from pathlib import Path

from engine.errors import kept_note


def test_the_newest_complete_checkpoint_is_named_and_none_is_said(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    assert kept_note(checkpoints) == "no earlier checkpoint was complete"  # no folder yet
    for name, complete in (("step-2", True), ("step-10", True), ("step-12", False), ("step-old", True)):
        (checkpoints / name).mkdir(parents=True)
        if complete:
            (checkpoints / name / "trainer_state.json").write_text("{}")
    assert kept_note(checkpoints) == "the last complete checkpoint, checkpoints/step-10, is kept"
