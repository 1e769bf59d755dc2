"""Runs survive their watchers: killed CLI or TUI, closed pipes, hang-ups; the store tolerates damage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from engine.launcher import follow_events
from engine.protocol import Finished, Step
from engine.run_store import RunDir, RunStore, redact
from tests.conftest import ROOT, make_config, start_run


def _wait(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _complete(run: RunDir) -> None:
    assert run.info().status == "completed", run.info()
    for name in ("config.json", "meta.json", "engine.json", "events.jsonl", "summary.json", "engine.log"):
        assert (run.path / name).is_file(), name
    assert any(run.weights_dir.iterdir())
    events = list(follow_events(run, follow=False))
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"


def test_run_finishes_when_the_cli_is_killed(tmp_path: Path, learnable_dataset: Path) -> None:
    runs = tmp_path / "runs"
    cli = subprocess.Popen([sys.executable, "-m", "lf_tui", "quick-train", "-m", "lora", "--dataset",
                            str(learnable_dataset), "--max-steps", "40", "--runs-dir", str(runs)],
                           stdout=subprocess.PIPE, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    for line in cli.stdout:
        if line.startswith("step 2/"):
            break
    cli.kill()  # like a dropped SSH session taking the CLI with it
    cli.wait()
    run = RunStore(runs).list()[0]
    _wait(lambda: RunDir(run.path).info().status != "running")
    _complete(RunDir(run.path))


def test_run_finishes_when_the_tui_is_killed(tmp_path: Path, learnable_dataset: Path) -> None:
    runs = tmp_path / "runs"
    script = textwrap.dedent(f"""
        import asyncio, os
        from lf_tui.app import LfTuiApp
        from lf_tui.run_setup import config_for_quick_train
        async def main():
            app = LfTuiApp(runs_dir={str(runs)!r})
            async with app.run_test() as pilot:
                resolved, _ = config_for_quick_train("lora", "builtin:tiny-llama", max_steps=40)
                app.start_run(resolved.config, {str(learnable_dataset)!r})
                screen = app.screen
                while screen.model.loss.count < 2:
                    await pilot.pause(0.05)
                os.kill(os.getpid(), 9)
        asyncio.run(main())
    """)
    tui = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert tui.returncode == -signal.SIGKILL, tui.stderr[-2000:]
    run = RunDir(RunStore(runs).list()[0].path)
    _wait(lambda: run.info().status != "running")
    _complete(run)


def test_engine_ignores_hangup_and_a_closed_pipe(store, learnable_dataset) -> None:
    run, proc = start_run(store, make_config("lora", training={"max_steps": 30}), learnable_dataset)
    next(e for e in proc.events() if isinstance(e, Step))
    os.kill(proc.pid, signal.SIGHUP)
    proc.detach()  # the reader goes away: the engine's next writes hit a closed pipe
    assert proc.wait(180) == 0
    _complete(run)


def test_two_watchers_and_concurrent_runs(store, learnable_dataset) -> None:
    runs = [start_run(store, make_config("lora", training={"max_steps": 5}), learnable_dataset) for _ in range(2)]
    assert runs[0][0].run_id != runs[1][0].run_id
    run = runs[0][0]
    first = [e.type for e in follow_events(run)]
    second = [e.type for e in follow_events(run)]
    assert first == second and first[-1] == "finished"
    for _, proc in runs:
        list(proc.events())
        assert proc.wait(120) == 0
    ids = {store.create("lora", {"base_model": "x"}).run_id for _ in range(30)}
    assert len(ids) == 30


def test_store_tolerates_damaged_folders(store, learnable_dataset) -> None:
    run, proc = start_run(store, make_config("lora", training={"max_steps": 3}), learnable_dataset)
    list(proc.events())
    proc.wait(120)
    good = run.info()
    damaged = {
        "truncated": lambda p: p.joinpath("events.jsonl").write_bytes(p.joinpath("events.jsonl").read_bytes()[:-25]),
        "no-summary": lambda p: p.joinpath("summary.json").unlink(),
        "bad-summary": lambda p: p.joinpath("summary.json").write_text("{"),
        "no-meta": lambda p: p.joinpath("meta.json").unlink(),
        "bad-meta": lambda p: p.joinpath("meta.json").write_bytes(b"\xff\xfe"),
        "no-events": lambda p: p.joinpath("events.jsonl").unlink(),
        "bad-engine": lambda p: p.joinpath("engine.json").write_text("[]"),
        "garbage-events": lambda p: p.joinpath("events.jsonl").write_bytes(os.urandom(2000)),
    }
    import shutil

    for name, damage in damaged.items():
        copy = store.root / name
        shutil.copytree(run.path, copy)
        damage(copy)
    (store.root / "empty").mkdir()
    (store.root / "foreign.txt").write_text("hello")
    infos = {i.run_id: i for i in store.list()}
    assert infos[run.run_id].status == good.status == "completed"
    assert infos["truncated"].status == "completed" and infos["truncated"].problems
    assert infos["no-summary"].status == "completed" and "summary.json missing" in infos["no-summary"].problems
    assert infos["no-meta"].problems and infos["garbage-events"].status in ("completed", "crashed")
    assert infos["empty"].status == "corrupt"
    listing = subprocess.run([sys.executable, "-m", "lf_tui", "runs", "--runs-dir", str(store.root)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "truncated" in listing.stdout


def test_shell_metacharacters_in_paths_are_just_paths(tmp_path: Path, learnable_dataset: Path) -> None:
    runs = tmp_path / "runs $(touch pwned) ; echo"
    data = tmp_path / "data `id` 'x'.jsonl"
    data.write_text(learnable_dataset.read_text())
    proc = subprocess.run([sys.executable, "-m", "lf_tui", "quick-train", "-m", "lora", "--dataset", str(data),
                           "--max-steps", "2", "--runs-dir", str(runs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "pwned").exists() and not any(p.name == "pwned" for p in runs.rglob("*"))


def test_secrets_never_reach_run_files(tmp_path: Path, learnable_dataset: Path) -> None:
    assert redact({"wandb_api_key": "s3cr3t", "hf_token": "t0k", "num_virtual_tokens": 20}) == {
        "wandb_api_key": "<redacted>", "hf_token": "<redacted>", "num_virtual_tokens": 20}
    runs = tmp_path / "runs"
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"method": "lora", "training": {"max_steps": 2}, "wandb_api_key": "s3cr3t-value",
                               "monitoring": {"wandb_project": "demo"}}))
    env = {**os.environ, "WANDB_API_KEY": "s3cr3t-env"}
    proc = subprocess.run([sys.executable, "-m", "lf_tui", "train", "-c", str(cfg), "--dataset",
                           str(learnable_dataset), "--runs-dir", str(runs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in runs.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log"):
            text = path.read_text(errors="replace")
            assert "s3cr3t" not in text, path


def test_follow_gives_up_on_a_run_whose_engine_never_started(store) -> None:
    run = store.create("lora", {"base_model": "builtin:tiny-llama"})
    meta = json.loads(run.file("meta.json").read_text())
    meta["created"] -= 3600
    run.file("meta.json").write_text(json.dumps(meta))
    assert list(follow_events(run, poll_s=0.01)) == []
    assert run.info().status == "crashed"
