"""One offline rule for the planner and lm-eval's tasks, the Hugging Face libraries' own (1/on/yes/true, any case)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine import lm_eval_tasks
from engine.planning import hub_offline

CASES = [({}, False), ({"HF_HUB_OFFLINE": "1"}, True), ({"HF_HUB_OFFLINE": "true"}, True),
         ({"HF_HUB_OFFLINE": "Yes"}, True), ({"HF_HUB_OFFLINE": "on"}, True), ({"HF_HUB_OFFLINE": "0"}, False),
         ({"HF_HUB_OFFLINE": "false"}, False), ({"HF_HUB_OFFLINE": "no"}, False), ({"HF_HUB_OFFLINE": "off"}, False),
         ({"HF_HUB_OFFLINE": ""}, False), ({"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "1"}, True),
         ({"TRANSFORMERS_OFFLINE": "TRUE"}, True), ({"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1"}, False)]
VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_planner_and_lm_eval_read_offline_alike(clean_env: pytest.MonkeyPatch) -> None:
    for env, expected in CASES:
        for name in VARS:
            clean_env.delenv(name, raising=False)
        for name, value in env.items():
            clean_env.setenv(name, value)
        assert (hub_offline(), lm_eval_tasks.offline()) == (expected, expected), env
    clean_env.setenv("HF_HUB_OFFLINE", "1")
    clean_env.setenv("HF_DATASETS_OFFLINE", "0")  # the datasets library's own variable decides for data sets
    assert hub_offline() and not lm_eval_tasks.offline()


def test_the_rule_is_huggingface_hub_s_own() -> None:
    """huggingface_hub.constants.HF_HUB_OFFLINE, read fresh for each case, agrees with hub_offline()."""
    script = ("import importlib, json, os, sys\nimport huggingface_hub.constants as c\n"
              "from engine.planning import hub_offline\nout = []\n"
              "for env, _ in json.loads(sys.argv[1]):\n"
              "    for name in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'):\n        os.environ.pop(name, None)\n"
              "    os.environ.update(env)\n    importlib.reload(c)\n    out.append([c.HF_HUB_OFFLINE, hub_offline()])\n"
              "print(json.dumps(out))")
    env = {k: v for k, v in os.environ.items() if k not in VARS}
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(CASES)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    answers = json.loads(proc.stdout)
    assert [ours for _, ours in answers] == [theirs for theirs, _ in answers] == [e for _, e in CASES]
