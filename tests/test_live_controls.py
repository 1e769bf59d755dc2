"""Live controls on a running training (checkpoint now; stop after the next evaluation), from `lf-tui control` as
the README shows it (a detached run in the default ./runs, from an empty folder) and from the run view's keys;
and the alerts a run raises (eval loss rising, a loss spike)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.control_requests import CONTROL_FILE, ControlInbox, ControlRefused, action_name, send
from engine.protocol import Control, Eval, Finished, Step, parse_event
from engine.run_store import RunDir, RunStore
from lf_tui.run_alerts import AlertWatch
from lf_tui.run_state import RunState

LF_TUI = Path(sys.executable).with_name("lf-tui")


def config(tmp: Path, eval_steps: int) -> Path:
    doc = json.loads((Path(__file__).parents[1] / "methods" / "lora" / "defaults.json").read_text())
    doc["method_config"]["training"].update(max_steps=3000, batch_size=2, max_seq_length=64)
    doc["method_config"]["monitoring"].update(eval_steps=eval_steps, save_steps=0, system_interval_s=1.0)
    path = tmp / "long.json"
    path.write_text(json.dumps(doc))
    return path


def lf(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([str(LF_TUI), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def events(run: RunDir) -> list:
    return [parse_event(line) for line in run.events_path.read_text().splitlines() if line.strip()]


def wait_for_steps(run: RunDir, steps: int, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.events_path.exists() and sum(isinstance(e, Step) for e in events(run)) >= steps:
            return
        time.sleep(0.2)  # polling another process's file (no event loop to wait on)
    raise AssertionError(f"run did not reach {steps} steps")


def test_requests_are_lines_read_once_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    assert action_name("stop-after-eval") == action_name("stop_after_eval") == "stop_after_eval"
    with pytest.raises(ControlRefused, match="checkpoint or stop-after-eval"):
        action_name("pause")
    with pytest.raises(ControlRefused, match="no such run folder"):
        send(tmp_path / "missing", "checkpoint")
    old = send(tmp_path, "checkpoint")  # written before the engine started: not for it
    inbox = ControlInbox(tmp_path)
    assert inbox.poll() == []
    first = send(tmp_path, "checkpoint", source="test")
    with (tmp_path / CONTROL_FILE).open("a") as handle:
        handle.write('{"not": "a request"}\n{"id": "x", "action": "pause"}\n{"id": "half", "act')
    got = inbox.poll()
    assert [r.id for r in got] == [first.id] and got[0].source == "test" and old.id != first.id
    with (tmp_path / CONTROL_FILE).open("a") as handle:
        handle.write('ion": "stop_after_eval"}\n')
    assert [(r.id, r.action) for r in inbox.poll()] == [("half", "stop_after_eval")]
    assert inbox.poll() == []


def test_alerts_say_each_rise_and_spike_once() -> None:
    watch = AlertWatch(eval_rises=2, spike_factor=1.5)
    said = [a.kind for step, loss in enumerate([2.0, 2.0, 2.0, 2.0, 2.0, 3.5, 3.6, 2.0, 2.0, 4.0]) for a in
            watch.step(step, loss)]
    assert said == ["loss_spike", "loss_spike"]  # 3.5 (3.6 continues the same spike), then 4.0 after it cleared
    rises = [a for i, v in enumerate([1.0, 1.1, 1.2, 1.3, 0.9, 1.0, 1.1]) for a in watch.eval(i, v)]
    assert [a.step for a in rises] == [2, 6] and "rose 2 evaluations in a row" in rises[0].message
    state = RunState()
    for i, v in enumerate([1.0, 1.1, 1.2]):
        state.ingest(Eval(step=i, eval_loss=v))
    assert len(state.alerts) == 1 and any("alert: eval loss rose" in m for _, m in state.logs)
    state.ingest(Control(request="r", action="checkpoint", status="done", step=3, detail="saved x"))
    assert state.controls[-1].status == "done" and "control checkpoint: done at step 3" in state.logs[-1][1]


def test_cli_checkpoint_and_stop_after_eval_on_a_detached_run(tmp_path: Path) -> None:
    cfg = config(tmp_path, eval_steps=40)
    work = tmp_path / "work"
    work.mkdir()
    started = lf("train", "-m", "lora", "-c", str(cfg), "--detach", cwd=work)
    assert started.returncode == 0, started.stdout + started.stderr
    (run_path,) = (work / "runs").iterdir()
    run = RunDir(run_path)
    try:
        wait_for_steps(run, 3)
        done = lf("control", run.run_id, "checkpoint", "--json", cwd=work)
        assert done.returncode == 0, done.stdout + done.stderr
        (answer,) = json.loads(done.stdout)
        assert answer["status"] == "done" and (run.checkpoints_dir / f"step-{answer['step']}").is_dir()
        stop = lf("control", run.run_id, "stop-after-eval", cwd=work)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "armed: stops after the evaluation at step" in stop.stdout and "stopping at step" in stop.stdout
        import time

        deadline = time.monotonic() + 120
        while run.summary() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        finished = [e for e in events(run) if isinstance(e, Finished)]
        controls = [e for e in events(run) if isinstance(e, Control)]
        assert [c.status for c in controls] == ["done", "armed", "stopping"]
        stopped_at = controls[-1].step
        assert finished and finished[-1].status == "completed" and stopped_at % 40 == 0 and stopped_at < 3000
        assert (run.checkpoints_dir / f"step-{stopped_at}").is_dir() and run.weights_dir.is_dir()
        assert any(isinstance(e, Eval) and e.step == stopped_at for e in events(run))
        summary = run.summary() or {}
        assert summary["stopped_early"] and "stopped after the evaluation at step" in summary["stop_reason"]
        # the run has ended: nothing to control
        late = lf("control", run.run_id, "checkpoint", cwd=work)
        assert late.returncode == 1 and "not running" in late.stdout
    finally:
        run.cancel()


async def test_run_view_keys_checkpoint_and_refuse_stop_without_eval(tmp_path: Path) -> None:
    from engine.launcher import launch
    from lf_tui.app import LfTuiApp
    from lf_tui.run_setup import create_run
    from methods.config_file import read_config_text
    from methods.validation import validate_config
    from tests.tui_helpers import wait_for

    resolved = validate_config(json.loads(read_config_text(config(tmp_path, eval_steps=0))))
    store = RunStore(tmp_path / "runs")
    run = create_run(store, resolved.config, None, None)
    app = LfTuiApp(runs_dir=store.root)
    async with app.run_test(size=(80, 24)) as pilot:
        process = launch(run)
        app.open_run(run, process)
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.last_step is not None and screen.state.last_step.step >= 2,
                       timeout=120, what="steps")
        await pilot.press("k")
        await wait_for(pilot, lambda: any("checkpoint: done" in n.message for n in app._notifications), timeout=60,
                       what="checkpoint answered")
        assert screen.state.checkpoints and any(c.status == "done" for c in screen.state.controls)
        await pilot.press("e")
        await wait_for(pilot, lambda: any("no periodic evaluation" in n.message for n in app._notifications),
                       timeout=60, what="stop refused")
        assert any(c.status == "refused" for c in screen.state.controls)
        assert screen.state.finished is None  # a refused stop does not stop the run
        process.cancel()
        await wait_for(pilot, lambda: screen.state.finished is not None, timeout=120, what="cancelled")
        assert screen.state.finished.status == "cancelled"
