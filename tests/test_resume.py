"""Resume tells the truth: status, lock, cancel, every segment followed, and the same losses as no interruption."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from engine.launcher import follow_events, launch
from engine.protocol import Checkpoint, Finished, RunStarted, Step
from engine.run_lock import RunLock, is_locked
from engine.run_store import RunDir, RunStore
from lf_tui.run_replay import replay_run
from tests.conftest import make_config, train
from tests.uneven_dataset import write_uneven_dataset

LF_TUI = str(Path(sys.executable).with_name("lf-tui"))


def lf(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([LF_TUI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def poll(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_cancel_resume_cancel_resume_through_the_cli(tmp_path: Path, learnable_dataset: Path) -> None:
    (tmp_path / "cfg.json").write_text(json.dumps({
        "method": "lora", "training": {"max_steps": 100000, "batch_size": 2},
        "monitoring": {"logging_steps": 1, "eval_steps": 0, "save_steps": 0}, "data": {"eval_split": 0}}))
    started = lf(tmp_path, "train", "-c", "cfg.json", "--dataset", str(learnable_dataset), "--detach")
    assert started.returncode == 0, started.stderr
    run = RunStore(tmp_path / "runs").list()[0]
    status = lambda: RunDir(run.path).info()  # noqa: E731
    poll(lambda: status().steps >= 2, what="first steps")
    assert lf(tmp_path, "cancel", run.run_id).returncode == 0
    poll(lambda: status().status == "cancelled", what="cancel")
    first_steps = status().steps

    resumed = lf(tmp_path, "train", "--resume", run.run_id, "--detach")
    assert resumed.returncode == 0, resumed.stderr
    poll(lambda: status().status == "running" and status().steps > first_steps, what="resumed training")
    assert replay_run(RunDir(run.path)).summary is None  # the comparison shows no stale "cancelled" summary
    again = lf(tmp_path, "train", "--resume", run.run_id, "--detach")  # refused while one engine trains
    assert again.returncode == 2 and "still running" in again.stderr
    assert lf(tmp_path, "cancel", run.run_id).returncode == 0  # cancel works on a resumed run
    poll(lambda: status().status == "cancelled", what="second cancel")

    cfg_path = run.path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["training"]["max_steps"] = status().steps + 3
    cfg_path.write_text(json.dumps(cfg))
    final = lf(tmp_path, "train", "--resume", run.run_id, "--plain")
    assert final.returncode == 0, final.stdout + final.stderr
    assert status().status == "completed"

    attach = lf(tmp_path, "attach", run.run_id, "--plain")  # every segment, not only the first
    assert attach.returncode == 0, attach.stdout
    assert "step 1/" in attach.stdout and f"step {cfg['training']['max_steps']}/" in attach.stdout
    assert attach.stdout.count("resumed from step") >= 2 and "Run completed" in attach.stdout
    record = replay_run(RunDir(run.path))  # the comparison's replay: one curve across the segments
    assert record.state.loss.count == cfg["training"]["max_steps"] and record.state.finished.status == "completed"


def test_losses_after_a_resume_equal_an_uninterrupted_run(store: RunStore, tmp_path: Path) -> None:
    """On distinct records of uneven lengths: a resume that replayed or skipped examples would change the losses."""
    learnable_dataset = write_uneven_dataset(tmp_path / "uneven.jsonl")
    config = make_config("lora", training={"max_steps": 8, "batch_size": 2},
                         monitoring={"save_steps": 4, "eval_steps": 0}, data={"eval_split": 0})
    run, events, rc = train(store, config, learnable_dataset)
    assert rc == 0
    straight = {e.step: e.loss for e in events if isinstance(e, Step)}
    assert sorted(straight) == list(range(1, 9))

    # the same run, crashed right after its step-4 checkpoint: cut everything later, then resume it
    crashed = RunDir(store.root / (run.run_id + "-crashed"))
    shutil.copytree(run.path, crashed.path)
    shutil.rmtree(crashed.weights_dir)
    (crashed.path / "summary.json").unlink()
    lines = crashed.events_path.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "checkpoint")
    crashed.events_path.write_text("".join(lines[:cut + 1]))
    assert crashed.info().status == "crashed"

    proc = launch(crashed, resume=True)
    resumed = list(proc.events())
    assert proc.wait(60) == 0
    started = next(e for e in resumed if isinstance(e, RunStarted))
    assert started.resumed_from_step == 4
    after = {e.step: e.loss for e in resumed if isinstance(e, Step)}
    assert sorted(after) == [5, 6, 7, 8]
    for step, loss in after.items():
        assert abs(loss - straight[step]) <= 1e-5 * max(1.0, abs(straight[step])), (step, loss, straight[step])
    whole = list(follow_events(crashed, follow=False))
    assert [e.step for e in whole if isinstance(e, Step)] == list(range(1, 9))
    assert [e.step for e in whole if isinstance(e, Checkpoint)][0] == 4
    assert isinstance(whole[-1], Finished) and crashed.info().status == "completed"


def test_the_run_lock_refuses_a_second_engine_and_frees_itself(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys,time; sys.path.insert(0, sys.argv[1]);"
                               "from engine.run_lock import RunLock; RunLock(sys.argv[2]).acquire();"
                               "print('held', flush=True); time.sleep(60)", str(Path(__file__).parents[1]),
                               str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert is_locked(folder)
    second = subprocess.run([sys.executable, "-m", "engine", "run", str(folder), "--resume"], capture_output=True,
                            text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert second.returncode == 3 and "another engine" in second.stderr and str(holder.pid) in second.stderr
    assert not (folder / "events.jsonl").exists()  # the refused engine touched nothing
    holder.kill()
    holder.wait()
    assert not is_locked(folder)  # the stale lock file is free again: its holder is dead
    lock = RunLock(folder)
    lock.acquire()
    lock.release()


def _crash_after_first_checkpoint(run: RunDir) -> None:
    """Leave `run` as an engine killed right after its first checkpoint leaves it."""
    shutil.rmtree(run.weights_dir)
    (run.path / "summary.json").unlink()
    lines = run.events_path.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "checkpoint")
    run.events_path.write_text("".join(lines[:cut + 1]))


async def test_resume_from_the_runs_list_follows_both_segments(store: RunStore, learnable_dataset: Path) -> None:
    from textual.widgets import DataTable

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.run_screen import RunScreen
    from lf_tui.screens.runs_screen import RunsScreen
    from tests.tui_helpers import wait_for

    config = make_config("lora", training={"max_steps": 6}, monitoring={"save_steps": 3, "eval_steps": 0})
    run, _, rc = train(store, config, learnable_dataset)
    assert rc == 0
    _crash_after_first_checkpoint(run)
    app = LfTuiApp(runs_dir=store.root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and app.screen.query_one("#runs", DataTable).row_count == 1, what="the run listed")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run view")
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.finished is not None, timeout=120, what="the resumed run to end")
        assert screen.state.finished.status == "completed" and screen.state.segments == 2
        assert screen.state.loss.points()[0] == [1, 2, 3, 4, 5, 6]  # one curve across the crash
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("r")  # a completed run is not resumed again
        await wait_for(pilot, lambda: any("has completed" in str(n.message) for n in app._notifications),
                       what="the refusal")
        assert isinstance(app.screen, RunsScreen)
