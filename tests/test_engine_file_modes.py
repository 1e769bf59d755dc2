"""What the engine writes into a run follows the umask too: trained weights, checkpoints (safetensors writes 0600)
and control.jsonl, so a team sharing a GPU box reads each other's runs."""

from __future__ import annotations

import stat
from pathlib import Path

from engine.control_requests import CONTROL_FILE, send
from engine.run_store import RunStore


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}


def test_a_control_request_s_file_follows_the_umask(tmp_path: Path, umask: None) -> None:
    run = RunStore(tmp_path / "runs").create("lora", {"base_model": "builtin:tiny-llama"})
    send(run.path, "checkpoint", "test")
    assert stat.S_IMODE((run.path / CONTROL_FILE).stat().st_mode) == 0o664


def test_a_trained_run_s_weights_and_checkpoints_follow_the_umask(tmp_path: Path, umask: None) -> None:
    from tests.test_training_maths import make_trainer

    trainer = make_trainer(tmp_path, "lora", training={"max_steps": 1, "learning_rate": 1e-3})
    trainer.total_steps = 1
    trainer.fit()
    trainer.save()
    trainer.finish(tmp_path / "weights")
    for folder in (tmp_path / "checkpoints", tmp_path / "weights"):
        modes = _modes(folder)
        assert any(name.endswith(".safetensors") for name in modes), modes
        wrong = {name: oct(mode) for name, mode in modes.items()
                 if mode != (0o775 if (folder / name).is_dir() else 0o664)}
        assert wrong == {}, f"{folder.name}: {wrong}"
