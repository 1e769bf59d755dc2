"""A full disk inside the engine: a checkpoint or events write that meets ENOSPC ends the run failed/disk and keeps
the last complete checkpoint. The failure is real: a file of the run folder is a symlink to /dev/full, where every
write fails with "No space left on device"."""

from __future__ import annotations

import errno
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.checkpoints_policy import complete_checkpoints
from engine.emitter import Emitter
from engine.errors import DISK_HINT, DiskError, disk_cause, disk_error
from engine.protocol import Checkpoint, Error, EventReader, Finished, Log, RunStarted, Step
from engine.run_store import RunDir, RunStore
from tests.conftest import make_config
from tests.test_training_maths import make_trainer

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not (FULL.exists() and stat.S_ISCHR(FULL.stat().st_mode)),
                                reason="needs /dev/full (a character device whose writes fail with ENOSPC)")


def _full_disk_at(folder: Path, name: str) -> None:
    (folder / name).symlink_to(FULL)


def test_the_disk_causes_are_recognised_however_a_writer_words_them() -> None:
    assert disk_cause(OSError(errno.ENOSPC, "No space left on device")) == "no space left on device"
    assert disk_cause(OSError(errno.EROFS, "x")) == "read-only file system"
    assert disk_cause(RuntimeError("Error while serializing: IoError(Os { code: 122, ... (os error 122)")) == \
        "disk quota exceeded"
    wrapped = RuntimeError("unexpected pos 704 vs 598")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert disk_cause(wrapped) == "no space left on device"
    assert disk_cause(OSError(errno.EACCES, "denied")) is None and disk_cause(ValueError("bad")) is None
    error = disk_error(OSError(errno.ENOSPC, "x"), "writing a.pt failed", "step-2 is kept")
    assert error is not None and error.kind == "disk" and error.message == \
        "writing a.pt failed: no space left on device; step-2 is kept"
    assert "--runs-dir" in DISK_HINT and "LF_TUI_RUNS_DIR" in DISK_HINT and "--resume" in DISK_HINT


def test_a_checkpoint_that_meets_a_full_disk_leaves_the_last_complete_one_to_resume_from(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, training={"max_steps": 3, "learning_rate": 1e-3})
    trainer.total_steps = 1
    trainer.fit()
    good = trainer.save()
    assert good.name == "step-1"
    trainer.total_steps = 2
    trainer.fit()
    real_save = trainer.impl.save

    class FullDiskImpl:  # the method's own save works; the optimizer file after it lands on a full disk
        def __getattr__(self, name: str) -> Any:
            return getattr(trainer.impl, name)

        def save(self, model: Any, folder: Path) -> None:
            real_save(model, folder)
            _full_disk_at(folder.parent, "optimizer.pt")

    trainer.impl = FullDiskImpl()
    with pytest.raises(DiskError) as info:
        trainer.save()
    assert info.value.kind == "disk"
    assert "checkpoint step-2" in info.value.message and "no space left on device" in info.value.message
    assert "checkpoints/step-1, is kept" in info.value.message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-1"]  # no half-written folder
    assert list(complete_checkpoints(tmp_path / "checkpoints")) == [1]

    resumed = make_trainer(tmp_path, training={"max_steps": 3, "learning_rate": 1e-3})
    resumed.resume_from(good)
    assert resumed.state.step == 1


def test_the_same_step_saved_again_replaces_the_old_one_only_once_complete(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, training={"max_steps": 1})
    trainer.fit()
    folder = trainer.save()
    before = (folder / "trainer_state.json").read_text()
    real_save = trainer.impl.save

    class FullDiskImpl:
        def __getattr__(self, name: str) -> Any:
            return getattr(trainer.impl, name)

        def save(self, model: Any, target: Path) -> None:
            real_save(model, target)
            _full_disk_at(target.parent, "scheduler.pt")

    impl, trainer.impl = trainer.impl, FullDiskImpl()
    with pytest.raises(DiskError, match="step-1, is kept"):
        trainer.save()
    trainer.impl = impl
    assert (folder / "trainer_state.json").read_text() == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["step-1"]


def test_an_events_file_on_a_full_disk_fails_the_run_and_its_ending_still_reaches_the_pipe(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    _full_disk_at(tmp_path, "events.jsonl")
    read_fd, write_fd = os.pipe()
    emitter = Emitter(events, write_fd)
    emitter.emit(RunStarted(run_id="r"))  # the start still reaches the pipe
    assert emitter.failure is not None and str(events) in emitter.failure.message
    with pytest.raises(DiskError, match="no space left on device"):  # training cannot go on without its record
        emitter.emit(Step(step=1, loss=1.0))
    emitter.emit(Error(kind="disk", message=emitter.failure.message, hint=DISK_HINT))  # the ending passes
    emitter.emit(Finished(status="failed"))
    emitter.close()
    os.set_blocking(read_fd, False)
    got = list(EventReader().feed_all(os.read(read_fd, 1 << 16).splitlines()))
    os.close(read_fd)
    assert [e.type for e in got] == ["run_started", "error", "finished"]
    stderr = capfd.readouterr().err
    assert "error (disk): writing the run's events" in stderr and "the run ended failed" in stderr


def test_a_real_run_whose_second_checkpoint_meets_a_full_disk_ends_failed_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runner import run as engine_run
    from lf_tui.run_setup import create_run
    from methods.catalogue import get_catalogue

    impl_class = type(get_catalogue().get("lora").implementation())
    real_save = impl_class.save

    def save(model: Any, folder: Path) -> None:
        real_save(model, folder)
        if folder.parent.name == ".step-4.tmp":  # the second checkpoint: its optimizer file hits a full disk
            _full_disk_at(folder.parent, "optimizer.pt")

    monkeypatch.setattr(impl_class, "save", staticmethod(save))
    cfg = make_config("lora", training={"max_steps": 6, "batch_size": 2},
                      monitoring={"save_steps": 2, "save_total_limit": 0})
    store = RunStore(tmp_path / "runs")
    run = create_run(store, cfg, None, None)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = engine_run(run.path)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    events = list(EventReader().feed_all(run.events_path.read_bytes().splitlines()))
    assert code == 1
    (error,) = [e for e in events if isinstance(e, Error)]
    assert error.kind == "disk" and "checkpoint step-4" in error.message, error
    assert "checkpoints/step-2, is kept" in error.message and "--runs-dir" in error.hint
    assert [e.step for e in events if isinstance(e, Checkpoint)] == [2]
    assert isinstance(events[-1], Finished) and events[-1].status == "failed"
    assert max(e.step for e in events if isinstance(e, Step)) == 4  # it stopped there
    info = RunDir(run.path).info()
    assert info.status == "failed" and (run.summary() or {})["error_kind"] == "disk"
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == ["step-2"]
    assert RunDir(run.path).latest_checkpoint() == run.checkpoints_dir / "step-2"
    assert not run.weights_dir.exists()
    state = torch.load(run.checkpoints_dir / "step-2" / "optimizer.pt", weights_only=True)
    assert state["state"]  # the kept checkpoint is whole
    assert not any(isinstance(e, Log) and "Traceback" in e.message for e in events)


def test_a_run_that_cannot_write_its_events_or_summary_keeps_its_ending_in_engine_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk so full that events.jsonl and summary.json fail: the ending is written into engine.json in place (its
    block is already allocated), for the store to read; the pipe and stderr carry it too."""
    import json

    import psutil

    import engine.runner as runner
    from engine.emitter import note_ending_in_place
    from engine.run_store import ENGINE

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.file(ENGINE).write_text(json.dumps({"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                            "started": 1.0}))
    _full_disk_at(run.path, "events.jsonl")
    emitter = Emitter(run.events_path)

    def full(path: Path, data: Any) -> None:
        if Path(path).name == "summary.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runner, "write_json", full)
    message = "writing the run's events failed: no space left on device"
    assert runner._finish(run, emitter, None, None, "failed", 0.0,
                          {"error": message, "error_kind": "disk", "error_hint": DISK_HINT}) == 1
    ended = json.loads(run.file(ENGINE).read_text())["ended"]
    assert ended == {"status": "failed", "error": message, "error_kind": "disk", "error_hint": DISK_HINT}
    other = tmp_path / "other.json"  # another process's engine.json is never written
    other.write_text(json.dumps({"pid": os.getpid() + 1}))
    assert note_ending_in_place(other, {"status": "failed"}) is False and "ended" not in other.read_text()
