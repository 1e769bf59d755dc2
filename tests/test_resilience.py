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
                while screen.state.loss.count < 2:
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


RUN_FILES = ("config.json", "meta.json", "engine.json", "events.jsonl", "summary.json", "engine.log")


def _leaks(run: RunDir, secrets: list[str]) -> list[tuple[str, str]]:
    """(file, secret) for every secret found in any file of the run folder (weights and checkpoints included)."""
    for name in RUN_FILES:
        assert run.file(name).is_file() and run.file(name).stat().st_size > 0, f"{name} missing or empty"
    files = [p for p in run.path.rglob("*") if p.is_file()]
    return [(str(p.relative_to(run.path)), s) for p in files for s in secrets if s.encode() in p.read_bytes()]


def test_redact_hides_secret_looking_keys_at_any_depth() -> None:
    data = {"wandb_api_key": "a", "hf_token": "b", "num_virtual_tokens": 20, "max_new_tokens": 8, "tokenizer": "t",
            "nested": [{"password": "c", "AWS_ACCESS_KEY": "d", "auth": "e", "apikey": "f"}], "token": "",
            "client_secret": {"deep": 1}}
    assert redact(data) == {"wandb_api_key": "<redacted>", "hf_token": "<redacted>", "num_virtual_tokens": 20,
                            "max_new_tokens": 8, "tokenizer": "t", "token": "",
                            "nested": [{"password": "<redacted>", "AWS_ACCESS_KEY": "<redacted>", "auth": "<redacted>",
                                        "apikey": "<redacted>"}], "client_secret": "<redacted>"}


def test_secrets_in_a_config_file_never_reach_run_files(tmp_path: Path, learnable_dataset: Path) -> None:
    """The user's path: secrets written into the config file and the environment, a real `lf-tui train`."""
    from lf_tui.run_setup import config_for_train

    secrets = {"hf_token": "hf_TOPLEVEL0secret", "monitoring.wandb_api_key": "wandb0MONITORING0secret",
               "method_specific.api_key": "sk-METHODSPECIFIC0secret"}
    env_secrets = {"WANDB_API_KEY": "wandb0ENV0secret", "HF_TOKEN": "hf_ENV0secret"}
    doc = {"method": "lora", "hf_token": secrets["hf_token"],
           "training": {"max_steps": 2, "batch_size": 4},
           "monitoring": {"logging_steps": 1, "eval_steps": 0, "wandb_project": "demo",
                          "wandb_api_key": secrets["monitoring.wandb_api_key"]},
           "method_specific": {"r": 4, "api_key": secrets["method_specific.api_key"]}}
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(doc))
    # Validation sees every secret and refuses it (no config field holds one; the error says to use the environment)
    # without echoing it; leniently it warns and drops them, so nothing secret reaches the store either way.
    resolved = config_for_train(str(cfg), None)
    assert not resolved.report.ok
    assert {e.path for e in resolved.report.errors if "unknown key" in e.message} == set(secrets)
    assert not [s for s in secrets.values() if s in json.dumps(resolved.report.to_dict())]
    from methods.validation import validate_config

    lenient = validate_config(doc, lenient=True)
    assert lenient.report.ok and lenient.config is not None
    dumped = json.dumps(lenient.config.model_dump(mode="json"))
    assert lenient.config.monitoring.wandb_project == "demo" and lenient.config.method_specific.r == 4
    assert not [s for s in secrets.values() if s in dumped]

    runs = tmp_path / "runs"
    env = {**os.environ, **env_secrets}
    command = [sys.executable, "-m", "lf_tui", "train", "-c", str(cfg), "--dataset", str(learnable_dataset),
               "--runs-dir", str(runs)]
    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
                             stdin=subprocess.DEVNULL)
    all_secrets = [*secrets.values(), *env_secrets.values()]
    assert refused.returncode == 1 and "hf_token" in refused.stdout + refused.stderr
    assert not [s for s in all_secrets if s in refused.stdout + refused.stderr]
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run folder exists
    # The same config with the secrets moved to the environment (as the error says) trains; none reaches a file.
    del doc["hf_token"], doc["monitoring"]["wandb_api_key"], doc["method_specific"]["api_key"]
    cfg.write_text(json.dumps(doc))
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [s for s in all_secrets if s in proc.stdout + proc.stderr]
    [info] = RunStore(runs).list()
    run = RunDir(info.path)
    assert info.status == "completed" and info.steps == 2, info
    assert run.config()["monitoring"]["wandb_project"] == "demo"
    assert _leaks(run, all_secrets) == []


def test_validate_config_json_does_not_echo_secrets(tmp_path: Path, capsys) -> None:
    from lf_tui.cli import main

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"method": "lora", "hf_token": "hf_ECHO0secret",
                               "monitoring": {"wandb_api_key": "wandb0ECHO0secret"}}))
    assert main(["validate-config", "-c", str(cfg), "--json", "--lenient"]) == 0
    out = capsys.readouterr().out
    warned = {w["path"] for w in json.loads(out)["warnings"]}
    assert warned == {"hf_token", "monitoring.wandb_api_key"}
    assert "ECHO0secret" not in out, out
    assert main(["validate-config", "-c", str(cfg), "--json"]) == 1  # strict: refused, still not echoed
    out = capsys.readouterr().out
    assert {e["path"] for e in json.loads(out)["errors"]} == {"hf_token", "monitoring.wandb_api_key"}
    assert "ECHO0secret" not in out, out


def test_secrets_given_to_the_store_are_redacted_in_every_run_file(store: RunStore, learnable_dataset: Path,
                                                                     monkeypatch) -> None:
    """Secrets that do reach run creation (config keys, the engine's environment) never reach a file."""
    from engine.launcher import launch

    config = make_config("lora", training={"max_steps": 2}).model_dump(mode="json")
    config["hf_token"] = "hf_CONFIG0secret"
    config["monitoring"]["wandb_api_key"] = "wandb0CONFIG0secret"
    config["method_specific"]["hub"] = [{"access_key": "AKIA0CONFIG0secret", "password": "pw0CONFIG0secret"}]
    secrets = ["hf_CONFIG0secret", "wandb0CONFIG0secret", "AKIA0CONFIG0secret", "pw0CONFIG0secret"]
    assert all(s in json.dumps(config) for s in secrets)  # really present in what the store is given
    env_secrets = {"WANDB_API_KEY": "wandb0ENV0secret", "HF_TOKEN": "hf_ENV0secret"}
    for key, value in env_secrets.items():
        monkeypatch.setenv(key, value)

    run = store.create("lora", config, {"dataset": str(learnable_dataset), "trust_remote_code": False})
    written = run.config()
    assert (written["hf_token"], written["monitoring"]["wandb_api_key"]) == ("<redacted>", "<redacted>")
    assert written["method_specific"]["hub"] == [{"access_key": "<redacted>", "password": "<redacted>"}]
    proc = launch(run)
    environ = Path(f"/proc/{proc.pid}/environ")
    if environ.exists():  # the engine really holds the environment secrets
        assert all(f"{k}={v}".encode() in environ.read_bytes().split(b"\0") for k, v in env_secrets.items())
    events = list(proc.events())
    assert proc.wait(120) == 0
    assert isinstance(events[-1], Finished) and events[-1].status == "completed"
    assert sum(isinstance(e, Step) for e in events) == 2
    assert _leaks(run, [*secrets, *env_secrets.values()]) == []


def test_follow_gives_up_on_a_run_whose_engine_never_started(store) -> None:
    run = store.create("lora", {"base_model": "builtin:tiny-llama"})
    meta = json.loads(run.file("meta.json").read_text())
    meta["created"] -= 3600
    run.file("meta.json").write_text(json.dumps(meta))
    assert list(follow_events(run, poll_s=0.01)) == []
    assert run.info().status == "crashed"
