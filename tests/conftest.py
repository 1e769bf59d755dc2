"""Shared fixtures: an isolated run store and model cache, and helpers that start real engine runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.launcher import launch
from engine.protocol import Event
from engine.run_store import RunDir, RunStore
from lf_tui.run_setup import create_run
from methods.validation import validate_config

ROOT = Path(__file__).resolve().parents[1]
LEARNABLE = [{"instruction": "Say the greeting.", "input": "", "output": "Hello there, friend."}] * 24


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["LF_TUI_CACHE"] = str(tmp_path_factory.mktemp("lf-tui-cache"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture
def umask() -> Any:
    """The process umask set to 002 (a team's shared machine) for the test, restored after."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def learnable_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "learnable.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    return path


def make_config(method: str, **sections: Any) -> Any:
    doc: dict[str, Any] = {"method": method, "training": {"max_steps": 12, "batch_size": 4},
                           "monitoring": {"logging_steps": 1, "eval_steps": 0, "save_steps": 0,
                                          "system_interval_s": 0.5}}
    for key, value in sections.items():
        doc.setdefault(key, {}).update(value) if isinstance(value, dict) else doc.__setitem__(key, value)
    resolved = validate_config(doc)
    assert resolved.report.ok, resolved.report.to_dict()
    return resolved.config


def start_run(store: RunStore, config: Any, dataset: Path | None = None):
    run = create_run(store, config, str(dataset) if dataset else None, None)
    return run, launch(run)


def train(store: RunStore, config: Any, dataset: Path | None = None,
          timeout: float = 300) -> tuple[RunDir, list[Event], int]:
    """Run to the end; a run that hangs is killed after `timeout` seconds so the suite never stalls."""
    import threading

    run, proc = start_run(store, config, dataset)
    watchdog = threading.Timer(timeout, proc.popen.kill)
    watchdog.start()
    try:
        events = list(proc.events())
        return run, events, proc.wait(timeout=timeout)
    finally:
        watchdog.cancel()


@pytest.fixture(autouse=True)
def _no_engine_outlives_its_test(tmp_path: Path):
    """Runs are detached by design, so a failing test could leave an engine training: kill those of this test."""
    yield
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "engine" in cmdline and any(str(tmp_path) in part for part in cmdline):
            try:
                proc.kill()
            except psutil.Error:
                pass
