"""Multi-process training through accelerate, as two CPU processes (gloo); the same tests run on GPUs unchanged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.distributed import ACCELERATE_CONFIG, rank_log, read_rank_records
from engine.launcher import launch
from engine.protocol import Checkpoint, Error, EventReader, Finished, RunStarted, Step
from tests.conftest import make_config, start_run, train
from tests.test_readme_paths import LF_TUI
from tests.uneven_dataset import write_uneven_dataset

# fp32 on both sides; the two ranks' halves of each batch reduce in another order than one batch does
LOSS_TOLERANCE = 1e-4
FP32 = {"mixed_precision": "no"}


def two(**distributed: Any) -> dict[str, Any]:
    return {**FP32, "distributed": {"num_processes": 2, **distributed}}


def losses(events: list[Any]) -> list[float]:
    return [e.loss for e in events if isinstance(e, Step)]


def _steps_until(proc: Any, n: int) -> list[Any]:
    seen = []
    for event in proc.events():
        seen.append(event)
        if isinstance(event, Step) and event.step >= n:
            return seen
    raise AssertionError(f"the run ended before step {n}: {seen[-3:]}")


def test_two_processes_train_like_one_at_the_same_global_batch(store, tmp_path) -> None:
    """Loss per step of 2 processes x batch 2 x accumulation 2 equals 1 process x batch 4 x accumulation 2, on
    distinct records of uneven lengths (a wrong per-rank normalisation or data split changes the curve); rank 0
    alone writes the events; both ranks log to their own files; the accelerate config stays with the run."""
    learnable_dataset = write_uneven_dataset(tmp_path / "uneven.jsonl")
    # a learning rate large enough that a gradient weighted otherwise (each rank's own token mean) shows in the
    # next steps' losses
    steps = {"max_steps": 5, "gradient_accumulation_steps": 2, "seed": 3, "learning_rate": 0.01}
    no_dropout = {"lora_dropout": 0.0}  # dropout masks depend on the batch shape: equal curves need none
    _, single, code = train(store, make_config("lora", training={**steps, "batch_size": 4}, hardware=FP32,
                                               method_specific=no_dropout),
                            learnable_dataset)
    assert code == 0
    run, multi, code = train(store, make_config("lora", training={**steps, "batch_size": 2}, hardware=two(),
                                                method_specific=no_dropout),
                             learnable_dataset)
    assert code == 0, [e for e in multi if isinstance(e, Error)]
    assert len(losses(multi)) == len(losses(single)) == 5
    for a, b in zip(losses(single), losses(multi)):
        assert abs(a - b) <= LOSS_TOLERANCE * abs(a), (losses(single), losses(multi))

    started = [e for e in multi if isinstance(e, RunStarted)]
    records = read_rank_records(run.path)
    assert len(started) == 1 and started[0].world_size == 2 and started[0].strategy == "ddp"
    assert started[0].pid == records[0]["pid"] != records[1]["pid"]  # rank 0 wrote it
    assert [e.step for e in multi if isinstance(e, Step)] == [1, 2, 3, 4, 5]  # once each, not once per rank
    assert {r["status"] for r in records.values()} == {"completed"}
    assert '"type":"step"' not in rank_log(run.path, 1).read_text()  # rank 1 wrote no events, even to its log
    assert rank_log(run.path, 1).stat().st_size > 0 and rank_log(run.path, 0).stat().st_size > 0
    config = json.loads((run.path / ACCELERATE_CONFIG).read_text())
    assert config["num_processes"] == 2 and config["use_cpu"] is True
    # the step's tokens are both ranks': the same count as the single process's
    assert [e.tokens for e in multi if isinstance(e, Step)] == [e.tokens for e in single if isinstance(e, Step)]
    assert run.summary()["status"] == "completed" and (run.weights_dir / "adapter_model.safetensors").is_file()


def _cancel_after(proc: Any, step: int, cancel: Any) -> int:
    """Cancel once `step` is reached; the step the run stopped (and checkpointed) at."""
    before = _steps_until(proc, step)
    cancel()
    rest = list(proc.events())
    assert proc.wait(60) == 130
    assert isinstance(rest[-1], Finished) and rest[-1].status == "cancelled"
    checkpoint = next(e for e in rest if isinstance(e, Checkpoint))
    last = max(e.step for e in before + rest if isinstance(e, Step))
    assert checkpoint.step == last
    return last


def test_cancel_stops_both_ranks_after_a_checkpoint_and_resume_completes(store, learnable_dataset) -> None:
    """Cancel from the app (a `cancel` line, as Ctrl+C sends) and from `lf-tui cancel` (SIGTERM): both ranks stop
    after one checkpoint; --resume continues with the same world size and refuses another."""
    cfg = make_config("lora", training={"max_steps": 300, "batch_size": 2}, hardware=two())
    run, proc = start_run(store, cfg, learnable_dataset)
    last = _cancel_after(proc, 2, proc.cancel)
    assert {r["status"] for r in read_rank_records(run.path).values()} == {"cancelled"}
    state = json.loads((run.latest_checkpoint() / "trainer_state.json").read_text())
    assert state["world_size"] == 2
    assert sorted(p.name for p in run.latest_checkpoint().glob("rng-rank*.pt")) == ["rng-rank0.pt", "rng-rank1.pt"]

    resumed = launch(run, resume=True)
    last = _cancel_after(resumed, last + 1, run.cancel)  # SIGTERM to the engine, as `lf-tui cancel` sends it
    document = run.config()
    document["training"]["max_steps"] = last + 2
    run.file("config.json").write_text(json.dumps(document))
    resumed = launch(run, resume=True)
    events = list(resumed.events())
    assert resumed.wait(120) == 0, [e for e in events if isinstance(e, Error)]
    (started,) = [e for e in events if isinstance(e, RunStarted)]
    assert started.resumed_from_step == last and started.world_size == 2
    assert [e.step for e in events if isinstance(e, Step)] == [last + 1, last + 2]
    assert run.summary()["status"] == "completed"

    document["hardware"]["distributed"]["num_processes"] = 1  # another world size is refused, with the reason
    document["training"]["max_steps"] = last + 10
    run.file("config.json").write_text(json.dumps(document))
    other = launch(run, resume=True)
    ended = list(other.events())
    assert other.wait(120) == 1
    (error,) = [e for e in ended if isinstance(e, Error)]
    assert error.kind == "resume" and "written by 2 process(es)" in error.message and "now has 1" in error.message


def test_a_killed_rank_ends_the_run_naming_it_and_its_log(store, learnable_dataset) -> None:
    cfg = make_config("lora", training={"max_steps": 300, "batch_size": 2}, hardware=two())
    run, proc = start_run(store, cfg, learnable_dataset)
    _steps_until(proc, 2)
    pid = read_rank_records(run.path)[1]["pid"]
    os.kill(pid, signal.SIGKILL)
    rest = list(proc.events())
    assert proc.wait(90) == 1
    (error,) = [e for e in rest if isinstance(e, Error)]
    assert "rank 1 died" in error.message and str(rank_log(run.path, 1)) in error.message, error.message
    assert isinstance(rest[-1], Finished) and rest[-1].status == "failed"
    assert run.info().status == "failed"
    assert not any(p.is_running() and p.status() != "zombie" for p in _rank_processes(run.path))


def _rank_processes(run_path: Path) -> list[Any]:
    import psutil

    out = []
    for record in read_rank_records(run_path).values():
        try:
            out.append(psutil.Process(record["pid"]))
        except psutil.Error:
            continue
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _events(run_dir: Path) -> list[Any]:
    return list(EventReader().feed_all((run_dir / "events.jsonl").read_bytes().splitlines()))


def test_the_installed_cli_trains_two_processes_and_two_machines_from_an_empty_folder(tmp_path):
    """As the README shows: `lf-tui train --config C` with two processes, default ./runs; then two 'machines'
    (one process each) rendezvousing over localhost with `--node-rank 0` and `--node-rank 1`."""
    work = tmp_path / "work"
    work.mkdir()
    write_uneven_dataset(work / "train.jsonl")  # distinct records: the two curves agree only if the split does
    steps = {"max_steps": 3, "batch_size": 2}
    monitoring = {"eval_steps": 0, "save_steps": 0}
    (work / "two.json").write_text(json.dumps({"method": "lora", "training": steps, "monitoring": monitoring,
                                               "hardware": two()}))
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    done = subprocess.run([LF_TUI, "train", "--config", "two.json", "--dataset", "train.jsonl", "--plain"], cwd=work,
                          capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "step 3/3" in done.stdout and "Run completed" in done.stdout
    (run_dir,) = [p for p in (work / "runs").iterdir() if not p.name.startswith(".")]
    assert (run_dir / "ranks" / "rank-1.log").is_file() and (run_dir / ACCELERATE_CONFIG).is_file()

    machines = {"num_processes": 1, "num_machines": 2, "main_process_ip": "127.0.0.1",
                "main_process_port": _free_port()}
    (work / "machines.json").write_text(json.dumps({"method": "lora", "training": steps, "monitoring": monitoring,
                                                    "hardware": {**FP32, "distributed": machines}}))
    nodes = [subprocess.Popen([LF_TUI, "train", "--config", "machines.json", "--dataset", "train.jsonl", "--plain",
                               "--node-rank", str(rank), "--runs-dir", f"node{rank}"], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    (main,) = [p for p in (work / "node0").iterdir() if not p.name.startswith(".")]
    (worker,) = [p for p in (work / "node1").iterdir() if not p.name.startswith(".")]
    main_events, worker_events = _events(main), _events(worker)
    assert [e.step for e in main_events if isinstance(e, Step)] == [1, 2, 3]
    assert next(e for e in main_events if isinstance(e, RunStarted)).world_size == 2
    assert not [e for e in worker_events if isinstance(e, Step)]  # machine 1 records only its start and end
    assert next(e for e in worker_events if isinstance(e, RunStarted)).machine_rank == 1
    assert worker_events[-1].status == "completed" and (worker / "ranks" / "rank-1.log").is_file()
    # the global batch is the same, so machine 0's curve is the two-process one
    assert losses(main_events) == pytest.approx(losses(_events(run_dir)), rel=LOSS_TOLERANCE)


def test_validation_names_the_field_and_the_fix(monkeypatch, tmp_path) -> None:
    import methods.distributed_rules as rules
    from methods.validation import validate_config

    def errors(hardware: dict[str, Any], method: str = "lora", **extra: Any) -> dict[str, str]:
        resolved = validate_config({"method": method, "hardware": hardware, **extra})
        found: dict[str, str] = {}
        for e in resolved.report.errors:
            found[e.path] = found.get(e.path, "") + f"{e.message} | {e.hint}; "
        return found

    monkeypatch.setattr(rules, "installed", lambda name: False)
    found = errors({"distributed": {"num_processes": 2, "strategy": "deepspeed"}})
    assert "deepspeed is not installed" in found["hardware.distributed.strategy"]
    assert "pip install deepspeed" in found["hardware.distributed.strategy"]
    monkeypatch.setattr(rules, "visible_gpus", lambda: 2)
    found = errors({"device": "cuda", "distributed": {"num_processes": 4}})
    assert "4 processes but 2 GPU(s)" in found["hardware.distributed.num_processes"]
    assert errors({"device": "cuda", "distributed": {"num_processes": 2}}) == {}
    found = errors({"distributed": {"num_processes": 2, "strategy": "fsdp", "fsdp": {"cpu_offload": True}}}, "qlora")
    assert "cannot be offloaded" in found["hardware.distributed.fsdp.cpu_offload"]
    found = errors({"distributed": {"num_processes": 2, "strategy": "fsdp"}}, "qlora",
                   method_specific={"load_in_4bit": False})
    assert "8-bit weights cannot be sharded" in found["method_specific.load_in_4bit"]
    found = errors({"distributed": {"num_machines": 2, "machine_rank": 2}})
    assert "hardware.distributed.main_process_ip" in found
    assert "not below num_machines 2" in found["hardware.distributed.machine_rank"]
    monkeypatch.setattr(rules, "visible_gpus", lambda: 0)
    found = errors({"distributed": {"num_processes": 2, "strategy": "fsdp"}})
    assert "a CPU run trains with ddp" in found["hardware.distributed.strategy"]

    path = tmp_path / "bad.json"  # through the CLI: the file, the line, the fix
    path.write_text('{\n  "method": "lora",\n  "hardware": {"distributed": {"num_machines": 2}}\n}\n')
    done = subprocess.run([LF_TUI, "validate-config", "--config", str(path)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode != 0 and "bad.json" in done.stdout + done.stderr
    assert "main_process_ip" in done.stdout + done.stderr and "(line 3)" in done.stdout
    path.write_text(json.dumps({"method": "lora", "hardware": {"distributed": {
        "num_machines": 2, "main_process_ip": "127.0.0.1"}}}))
    rank = subprocess.run([LF_TUI, "train", "--config", str(path), "--node-rank", "5"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert rank.returncode == 1 and "(from --node-rank 5) 5 is not below num_machines 2" in rank.stdout + rank.stderr
    assert not (tmp_path / "runs").exists()


def test_the_global_batch_and_the_planner_share_out_what_is_sharded(monkeypatch) -> None:
    from methods.distributed_rules import global_batch
    from methods.validation import validate_config

    cfg = validate_config({"method": "lora", "training": {"batch_size": 3, "gradient_accumulation_steps": 4},
                           "hardware": {"distributed": {"num_processes": 2, "num_machines": 2,
                                                        "main_process_ip": "10.0.0.1"}}}).config
    assert global_batch(cfg) == (48, "batch 3 x 4 processes (2 machines) x accumulation 4")
    single = validate_config({"method": "lora"}).config
    assert global_batch(single) == (4, "batch 4")

    import methods.distributed_rules as rules
    from engine.planning import estimate

    monkeypatch.setattr(rules, "visible_gpus", lambda: 4)

    def plan(method: str, **distributed: Any) -> dict[str, int]:
        doc = {"method": method, "hardware": {"device": "cuda", "distributed": distributed}}
        resolved = validate_config(doc)
        assert resolved.config is not None, resolved.report.to_dict()
        return estimate(resolved.config, "cuda")[0].parts

    one, ddp = plan("full_finetune"), plan("full_finetune", num_processes=4)
    assert ddp == one  # DDP: every process holds everything
    full = plan("full_finetune", num_processes=4, strategy="fsdp")
    for part in ("weights", "gradients", "optimizer states"):
        assert full[part] == -(-one[part] // 4), part
    assert full["activations"] == one["activations"]
    grads_only = plan("full_finetune", num_processes=4, strategy="fsdp", fsdp={"sharding_strategy": "shard_grad_op"})
    assert grads_only["weights"] == one["weights"] and grads_only["optimizer states"] == full["optimizer states"]
    lora = plan("lora", num_processes=2, strategy="fsdp")
    assert lora["trainable weights"] == -(-plan("lora")["trainable weights"] // 2)


async def test_the_editor_shows_the_global_batch(tmp_path) -> None:
    from textual.widgets import TextArea

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.editor_screen import EditorScreen
    from lf_tui.screens.methods_screen import MethodsScreen
    from tests.tui_helpers import wait_for

    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen), what="methods screen")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), what="editor")
        area = app.screen.query_one("#config", TextArea)

        def verdict() -> str:
            return str(app.screen.query_one("#verdict").render())

        await wait_for(pilot, lambda: "valid" in verdict(), what="verdict")
        assert "global batch" not in verdict()  # one process, no accumulation: it is training.batch_size
        document = json.loads(area.text)
        document["method_config"]["training"].update(batch_size=3, gradient_accumulation_steps=2)
        document["method_config"]["hardware"]["distributed"] = {"num_processes": 2}
        area.text = json.dumps(document, indent=2)
        await wait_for(pilot, lambda: "global batch 12" in verdict(), what="global batch")
        assert "3 x 2 processes x 2 accumulation" in verdict()


def test_qlora_sharding_its_4bit_weights_is_refused_with_what_works(monkeypatch) -> None:
    import methods.distributed_rules as rules
    from methods.validation import validate_config

    monkeypatch.setattr(rules, "visible_gpus", lambda: 2)
    doc = {"method": "qlora", "hardware": {"device": "cuda", "distributed": {"num_processes": 2, "strategy": "fsdp"}}}
    (error,) = [e for e in validate_config(doc).report.errors if e.path == "hardware.distributed.strategy"]
    assert "uint8" in error.message and "shard_grad_op" in error.hint
    doc["hardware"]["distributed"]["fsdp"] = {"sharding_strategy": "shard_grad_op"}
    assert validate_config(doc).report.ok


def test_system_events_list_the_gpus_the_run_may_use(monkeypatch) -> None:
    from engine.monitor import SystemMonitor, visible_indices

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_indices(4) == [0, 1, 2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    assert visible_indices(4) == [1, 3]

    class Nvml:  # four GPUs, each using (index + 1) GiB of 80
        nvmlDeviceGetCount = staticmethod(lambda: 4)
        nvmlDeviceGetHandleByIndex = staticmethod(lambda i: i)
        nvmlDeviceGetMemoryInfo = staticmethod(lambda h: type("M", (), {"used": (h + 1) * 2**30, "total": 80 * 2**30}))
        nvmlDeviceGetUtilizationRates = staticmethod(lambda h: type("U", (), {"gpu": 10 * h}))
        nvmlDeviceGetName = staticmethod(lambda h: f"GPU-{h}")

    monitor = SystemMonitor(lambda event: None, 1.0)
    monitor._nvml = Nvml
    gpus = monitor.sample().gpus
    assert [g["index"] for g in gpus] == [1, 3] and gpus[1]["memory_used_mb"] == 4 * 1024
    from engine.protocol import System
    from lf_tui.present.gauges import gauges
    shown = [g.label for g in gauges(System(gpus=gpus))]
    assert shown == ["GPU1 mem", "GPU1 util", "GPU3 mem", "GPU3 util"]  # the run view: one gauge per GPU


async def test_the_app_starts_watches_cancels_and_resumes_a_two_process_run(tmp_path, learnable_dataset) -> None:
    from textual.widgets import DataTable

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.run_screen import RunScreen
    from lf_tui.screens.runs_screen import RunsScreen
    from lf_tui.widgets.dialogs import ConfirmScreen
    from tests.tui_helpers import start_from_editor, wait_for

    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await start_from_editor(pilot, app, {"training": {"max_steps": 300, "batch_size": 2},
                                             "hardware": two()}, str(learnable_dataset))
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.loss.count >= 2, timeout=180, what="steps")
        assert screen.state.started.world_size == 2 and screen.state.started.strategy == "ddp"
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="cancel confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.state.finished is not None, timeout=120, what="run to stop")
        assert screen.state.finished.status == "cancelled"
        run = screen.run
        last = json.loads((run.latest_checkpoint() / "trainer_state.json").read_text())["step"]
        document = run.config()
        document["training"]["max_steps"] = last + 2
        run.file("config.json").write_text(json.dumps(document))

        await pilot.press("escape", "f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and
                       app.screen.query_one("#runs", DataTable).row_count == 1, what="runs listed")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the resumed run's view")
        resumed = app.screen
        await wait_for(pilot, lambda: resumed.state.finished is not None and resumed.state.finished.status ==
                       "completed", timeout=180, what="the resumed run to complete")
        assert run.summary()["status"] == "completed" and run.summary()["total_steps"] == last + 2
