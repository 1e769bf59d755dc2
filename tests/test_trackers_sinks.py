"""The tracker sinks without an engine: a missing extra says how to install it, a resume purges what a crash left
in TensorBoard, the W&B run id is kept in the run folder, a failing tracker never stops the run."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.external_loggers import make_external_logger, system_figures
from engine.protocol import System
from engine.tracker_wandb import TRACKERS_FILE, wandb_run_id
from methods.tracker_extras import tracker_warnings, wandb_configured


def monitoring(**kw: object) -> SimpleNamespace:
    return SimpleNamespace(**{"tensorboard_log_dir": None, "wandb_project": None, **kw})


def test_a_missing_extra_names_its_pip_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for blocked in ("tensorboard", "torch.utils.tensorboard", "wandb"):
        monkeypatch.setitem(sys.modules, blocked, None)  # `import` raises ImportError, as when it is not installed
    monkeypatch.setenv("WANDB_MODE", "offline")
    logged: list[tuple[str, str]] = []
    mon = monitoring(tensorboard_log_dir=str(tmp_path / "tb"), wandb_project="p")
    log_metrics, close = make_external_logger(mon, "r1", {}, lambda level, text: logged.append((level, text)), tmp_path)
    log_metrics({"train/loss": 1.0}, 1)
    close()
    assert logged == [
        ("warning", "monitoring.tensorboard_log_dir is set but tensorboard is not installed, so the run logs nothing "
                    "there: pip install 'lf-tui[tensorboard]'"),
        ("warning", "monitoring.wandb_project is set but wandb is not installed, so the run logs nothing there: "
                    "pip install 'lf-tui[wandb]'")]
    assert not (tmp_path / "tb").exists() and not (tmp_path / TRACKERS_FILE).exists()
    # the same for the validation report (a config checked before a run)
    assert [(path, hint) for path, _, _, hint in tracker_warnings(mon)] == [
        ("monitoring.tensorboard_log_dir", "pip install 'lf-tui[tensorboard]'"),
        ("monitoring.wandb_project", "pip install 'lf-tui[wandb]'")]


def test_wandb_is_configured_by_a_key_an_offline_mode_or_a_login(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    assert not wandb_configured({"NETRC": str(netrc)})
    assert wandb_configured({"WANDB_MODE": "offline", "NETRC": str(netrc)})
    assert wandb_configured({"WANDB_API_KEY": "k", "NETRC": str(netrc)})
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    netrc.chmod(0o600)
    assert wandb_configured({"NETRC": str(netrc)})  # what `wandb login` writes
    assert not wandb_configured({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.com"})


def test_the_wandb_run_id_is_kept_in_the_run_folder(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    kept = wandb_run_id(first, "lora-1")
    assert wandb_run_id(first, "lora-1") == kept  # a resume gets the same W&B run
    assert wandb_run_id(second, "lora-1") != kept  # another run folder (even one with the same name) another
    assert (first / TRACKERS_FILE).is_file()


def test_a_resume_purges_the_steps_a_crash_logged_after_its_checkpoint(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    pytest.importorskip("torch.utils.tensorboard")
    mon = monitoring(tensorboard_log_dir=str(tmp_path / "tb"))
    run_path = tmp_path / "run"
    run_path.mkdir()
    log_metrics, close = make_external_logger(mon, "r1", {}, lambda level, text: None, run_path)
    for step in range(1, 9):  # the first segment logs 8 steps, then crashes after its step-4 checkpoint
        log_metrics({"train/loss": 10.0 + step}, step)
    close()
    (run_path / "checkpoints" / "step-4").mkdir(parents=True)
    (run_path / "checkpoints" / "step-4" / "trainer_state.json").write_text("{}")
    log_metrics, close = make_external_logger(mon, "r1", {}, lambda level, text: None, run_path)
    for step in range(5, 9):  # the resume trains steps 5-8 again
        log_metrics({"train/loss": 20.0 + step}, step)
    close()
    acc = EventAccumulator(str(tmp_path / "tb" / "r1"), size_guidance={SCALARS: 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [
        (1, 11.0), (2, 12.0), (3, 13.0), (4, 14.0), (5, 25.0), (6, 26.0), (7, 27.0), (8, 28.0)]


def test_a_failing_tracker_is_dropped_with_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    logged: list[tuple[str, str]] = []
    mon = monitoring(tensorboard_log_dir=str(tmp_path / "tb"))
    log_metrics, close = make_external_logger(mon, "r1", {}, lambda level, text: logged.append((level, text)))
    log_metrics({"train/loss": "not a number"}, 1)  # type: ignore[dict-item]
    log_metrics({"train/loss": 1.0}, 2)
    close()
    assert logged[0][0] == "info" and "TensorBoard scalars go to" in logged[0][1]
    assert len(logged) == 2 and logged[1][0] == "warning" and logged[1][1].startswith("TensorBoard stopped logging: ")


def test_system_gauges_become_scalars() -> None:
    event = System(cpu_percent=12.5, rss_mb=300.0, ram_used_mb=4000.0, ram_total_mb=8000.0,
                   gpus=[{"index": 1, "name": "H100", "memory_used_mb": 512.0, "memory_total_mb": 81559.0,
                          "utilization": 97.0}])
    assert system_figures(event) == {"system/cpu_percent": 12.5, "system/rss_mb": 300.0, "system/ram_used_mb": 4000.0,
                                     "system/gpu1_memory_used_mb": 512.0, "system/gpu1_utilization": 97.0}
