"""The external trackers end to end, offline: a real run on the built-in model, cancelled after a few steps and
resumed, read back with TensorBoard's own reader and W&B's own transaction-log reader: every step once, in one
TensorBoard folder and one W&B run, with the values of the run's events.jsonl."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.event_follow import follow_events
from engine.launcher import launch
from engine.protocol import Eval, Event, RunStarted, Step, System
from engine.run_store import RunDir, RunStore
from engine.tracker_wandb import TRACKERS_FILE
from tests.conftest import LEARNABLE, make_config, start_run

pytest.importorskip("tensorboard")
pytest.importorskip("wandb")
WANDB = str(Path(sys.executable).with_name("wandb"))


@dataclass
class Resumed:
    run: RunDir
    tensorboard: Path
    events: list[Event]  # both segments, as events.jsonl holds them
    cancelled_at: int


def watched(proc: Any, timeout: float = 300) -> Iterator[Event]:
    """The engine's events; one that hangs is killed after `timeout` seconds so the suite never stalls."""
    watchdog = threading.Timer(timeout, proc.popen.kill)
    watchdog.start()
    try:
        yield from proc.events()
    finally:
        watchdog.cancel()


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Resumed:
    """One run with both trackers: 3+ steps, cancelled (its checkpoint), resumed for 3 more steps; eval every 2."""
    root = tmp_path_factory.mktemp("trackers")
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    config = make_config("lora", training={"max_steps": 10000, "batch_size": 4},
                         monitoring={"eval_steps": 2, "system_interval_s": 0.2, "wandb_project": "lf-tui-test",
                                     "tensorboard_log_dir": str(root / "tb")}, data={"eval_split": 0.2})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "offline")  # no network: the W&B run is written to the run folder
        env.setenv("WANDB_SILENT", "true")
        for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            env.setenv(name, str(root / "wandb-home"))  # W&B's own settings and caches: not the user's home
        run, proc = start_run(RunStore(root / "runs"), config, dataset)
        try:
            cancelled = False
            for event in watched(proc):
                if isinstance(event, Step) and event.step >= 3 and not cancelled:
                    proc.cancel()
                    cancelled = True
            assert proc.wait(120) == 130, (run.path / "engine.log").read_text()
            cancelled_at = max(e.step for e in follow_events(run, follow=False) if isinstance(e, Step))
            document = json.loads((run.path / "config.json").read_text())
            document["training"]["max_steps"] = cancelled_at + 3
            (run.path / "config.json").write_text(json.dumps(document))
            proc = launch(run, resume=True)
            list(watched(proc))
            assert proc.wait(120) == 0, (run.path / "engine.log").read_text()
        finally:
            if proc.popen.poll() is None:
                proc.popen.kill()
    return Resumed(run, root / "tb" / run.run_id, list(follow_events(run, follow=False)), cancelled_at)


def test_the_run_was_cancelled_then_resumed_with_evaluations(resumed: Resumed) -> None:
    starts = [e for e in resumed.events if isinstance(e, RunStarted)]
    assert [s.resumed_from_step for s in starts] == [0, resumed.cancelled_at]
    assert [e.step for e in resumed.events if isinstance(e, Step)] == list(range(1, resumed.cancelled_at + 4))
    assert [e.step for e in resumed.events if isinstance(e, Eval)]


def test_tensorboard_reads_back_every_step_once_with_the_runs_values(resumed: Resumed) -> None:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    assert len(list(resumed.tensorboard.glob("events.out.tfevents.*"))) == 2  # one folder, a file per segment
    acc = EventAccumulator(str(resumed.tensorboard), size_guidance={SCALARS: 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    steps = [e for e in resumed.events if isinstance(e, Step)]
    evals = [e for e in resumed.events if isinstance(e, Eval)]
    assert scalars["train/loss"] == [(s.step, pytest.approx(s.loss, rel=1e-6)) for s in steps]
    assert scalars["train/learning_rate"] == [(s.step, pytest.approx(s.learning_rate, rel=1e-6)) for s in steps]
    assert scalars["eval/loss"] == [(e.step, pytest.approx(e.eval_loss, rel=1e-6)) for e in evals]
    system = [e for e in resumed.events if isinstance(e, System)]
    assert len(system) >= 2  # the engine's own gauges, each sample once, at the step it was taken after
    for tag, field in (("system/rss_mb", "rss_mb"), ("system/cpu_percent", "cpu_percent"),
                       ("system/ram_used_mb", "ram_used_mb")):
        assert [v for _, v in scalars[tag]] == [pytest.approx(getattr(e, field), rel=1e-6) for e in system]
    expected, latest = [], 0  # each sample is logged at the latest step before it (samples come on a timer)
    for event in resumed.events:
        if isinstance(event, Step):
            latest = event.step
        elif isinstance(event, System):
            expected.append(latest)
    assert [step for step, _ in scalars["system/rss_mb"]] == expected


def wandb_records(folder: Path) -> list[dict[str, Any]]:
    """The records of a W&B run folder's .wandb transaction log, read by wandb's own reader (leet inspect)."""
    done = subprocess.run([WANDB, "leet", "inspect", "--json", str(folder)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_wandb_offline_holds_one_run_with_every_step_once(resumed: Resumed) -> None:
    kept = json.loads((resumed.run.path / TRACKERS_FILE).read_text())["wandb_run_id"]
    segments = sorted((resumed.run.path / "wandb").glob("offline-run-*"))
    assert len(segments) == 2  # W&B writes a folder per process; `wandb sync` joins them under the run's id
    records = [r for folder in segments for r in wandb_records(folder)]
    assert {r["run"]["run_id"] for r in records if r["type"] == "run"} == {kept}
    assert {r["run"]["project"] for r in records if r["type"] == "run"} == {"lf-tui-test"}
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    steps = [e for e in resumed.events if isinstance(e, Step)]
    evals = [e for e in resumed.events if isinstance(e, Eval)]
    train = [(row["_step"], row["train/loss"], row["train/learning_rate"]) for row in history if "train/loss" in row]
    assert train == [(s.step, pytest.approx(s.loss, rel=1e-12), pytest.approx(s.learning_rate, rel=1e-12))
                     for s in steps]
    assert [(row["_step"], row["eval/loss"]) for row in history if "eval/loss" in row] == [
        (e.step, pytest.approx(e.eval_loss, rel=1e-12)) for e in evals]
    rss = {e.rss_mb for e in resumed.events if isinstance(e, System)}
    assert {row["system/rss_mb"] for row in history if "system/rss_mb" in row} <= rss
