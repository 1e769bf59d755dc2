"""A tracker the config asks for whose package is not installed: validate-config and the editor say so first."""

from __future__ import annotations

import pytest

from methods.validation import validate_config


def test_a_missing_tracker_extra_is_a_validation_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"method": "lora", "monitoring": {"tensorboard_log_dir": "tb", "wandb_project": "p"}}
    report = validate_config(doc).report
    assert report.ok and not [w for w in report.warnings if "not installed" in w.message]  # dev extras: both here
    monkeypatch.setattr("methods.tracker_extras.installed", lambda package: False)
    report = validate_config(doc).report
    assert report.ok
    hints = {w.path: w.hint for w in report.warnings if "not installed" in w.message}
    assert hints == {"monitoring.tensorboard_log_dir": "pip install 'lf-tui[tensorboard]'",
                     "monitoring.wandb_project": "pip install 'lf-tui[wandb]'"}
