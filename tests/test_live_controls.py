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


def test_the_engine_inbox_keeps_the_requests_sent_since_its_start(tmp_path: Path) -> None:
    """Made at the engine's start: a request sent while it loads (already in the file when training begins) is
    answered; an earlier segment's is not (a resume starts from its launch time)."""
    import time

    old = send(tmp_path, "checkpoint")
    time.sleep(0.01)
    launched = time.time()
    loading = send(tmp_path, "stop-after-eval")
    resumed = ControlInbox(tmp_path, since=launched)
    assert [r.id for r in resumed.poll()] == [loading.id] and resumed.poll() == []
    later = send(tmp_path, "checkpoint")
    assert [r.id for r in resumed.poll()] == [later.id]
    fresh = ControlInbox(tmp_path, since=0.0)  # a new run: every request in its file is for this engine
    assert [r.id for r in fresh.poll()] == [old.id, loading.id, later.id]


def _multi_process_run(tmp_path: Path) -> RunDir:
    import psutil

    folder = tmp_path / "runs" / "20260101-000000-lora-ab12"
    folder.mkdir(parents=True)
    from tests.conftest import make_config

    config = make_config("lora", hardware={"mixed_precision": "no", "distributed": {"num_processes": 2}})
    (folder / "config.json").write_text(json.dumps(config.model_dump(mode="json")))  # as create_run writes it
    (folder / "meta.json").write_text(json.dumps({"run_id": folder.name, "method": "lora", "created": 1.0}))
    (folder / "engine.json").write_text(json.dumps({"pid": os.getpid(), "started": 2.0,
                                                    "create_time": psutil.Process().create_time()}))
    return RunDir(folder)


def test_a_multi_process_run_refuses_live_controls_before_anything_waits(tmp_path: Path) -> None:
    run = _multi_process_run(tmp_path)
    assert run.info().status == "running"
    with pytest.raises(ControlRefused, match="trains in 2 processes: live controls .* single-process runs only"):
        send(run.path, "checkpoint")  # what the run view's k and e send too
    assert not (run.path / CONTROL_FILE).exists()
    import time

    started = time.monotonic()
    done = lf("control", run.run_id, "checkpoint", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "trains in 2 processes" in done.stdout and "cancel it instead" in done.stdout
    assert time.monotonic() - started < 30  # refused at once, not after its 300 s wait


def test_requests_at_the_last_step_and_after_the_end_are_answered(tmp_path: Path) -> None:
    from engine.live_controls import LiveControls
    from tests.test_training_maths import make_trainer

    events: list = []
    trainer = make_trainer(tmp_path, events=events, training={"max_steps": 2})
    trainer.live = LiveControls(trainer, ControlInbox(tmp_path, since=0.0))
    early = send(tmp_path, "checkpoint")  # before the first step (the engine was loading): done at step 1
    asked: list = []

    def emit(event) -> None:
        events.append(event)
        if isinstance(event, Step) and event.step == 2:  # after the last step, before the loop looks again
            asked.append(send(tmp_path, "checkpoint"))
            asked.append(send(tmp_path, "stop-after-eval"))

    trainer.emit = emit
    trainer.fit()
    trainer.finish(tmp_path / "weights")
    late = send(tmp_path, "checkpoint")  # while the run ends (its deployment figures): the end answers it
    trainer.live.at_end("completed")
    answers = {e.request: e for e in events if isinstance(e, Control)}
    assert answers[early.id].status == "done" and answers[early.id].step == 1
    assert answers[asked[0].id].status == "refused" and "step 2 is the run's last" in answers[asked[0].id].detail
    assert answers[asked[1].id].status == "stopping" and "evaluates, saves its final weights" in \
        answers[asked[1].id].detail
    assert answers[late.id].status == "refused" and "the run has ended (completed at step 2)" in \
        answers[late.id].detail
    assert len(answers) == 4

    refusing = LiveControls(trainer, ControlInbox(tmp_path / "weights", since=0.0), refusal="2 processes: no")
    request = send(tmp_path / "weights", "checkpoint")
    assert refusing.after_step(False) is False
    assert events[-1].request == request.id and events[-1].status == "refused" and events[-1].detail == "2 processes: no"


def test_a_real_engine_answers_requests_sent_while_it_loaded_and_after_it_trained(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    import engine.deployment
    from engine.runner import run as engine_run
    from lf_tui.run_setup import create_run
    from tests.conftest import make_config

    cfg = make_config("lora", training={"max_steps": 3, "batch_size": 2})
    run = create_run(RunStore(tmp_path / "runs"), cfg, None, None)
    checkpoint = send(run.path, "checkpoint", source="test")  # the engine has not started yet
    stop = send(run.path, "stop-after-eval", source="test")
    late: list = []
    measure = engine.deployment.after_training

    def after_training(*args, **kwargs):  # the run has trained; a request comes while it measures and ends
        late.append(send(run.path, "checkpoint", source="test"))
        return measure(*args, **kwargs)

    monkeypatch.setattr(engine.deployment, "after_training", after_training)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        assert engine_run(run.path) == 0
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    answers = {e.request: e for e in events(run) if isinstance(e, Control)}
    assert answers[checkpoint.id].status == "done" and answers[checkpoint.id].step == 1
    assert (run.checkpoints_dir / "step-1").is_dir()
    assert answers[stop.id].status == "refused" and "no periodic evaluation" in answers[stop.id].detail
    assert answers[late[0].id].status == "refused" and "has ended (completed at step 3)" in answers[late[0].id].detail
    assert isinstance(events(run)[-1], Finished)


def test_stop_after_eval_armed_near_the_end_names_the_last_step_not_one_past_it(tmp_path: Path) -> None:
    """eval every 50 steps on a 30-step run: the evaluation that stops it is the last step's (30), not step 50."""
    from types import SimpleNamespace

    from engine.live_controls import LiveControls

    events: list = []
    trainer = SimpleNamespace(state=SimpleNamespace(step=3, last_eval_step=0, eval_losses=[]), total_steps=30,
                              cfg=SimpleNamespace(monitoring=SimpleNamespace(eval_steps=50)), eval_set=[1],
                              emit=events.append, save=lambda: None)
    live = LiveControls(trainer, ControlInbox(tmp_path, since=0.0))
    send(tmp_path, "stop-after-eval")
    assert live.after_step(False) is False
    assert events[-1].status == "armed" and events[-1].detail == "stops after the evaluation at step 30, the run's last"
    trainer.total_steps = 200  # a long run: the next periodic evaluation
    send(tmp_path, "stop-after-eval")
    live.after_step(False)
    assert events[-1].detail == "stops after the evaluation at step 50"
