"""Checks before launch: a data file the engine would refuse, or a hub model neither cached nor reachable, is
refused before a run folder exists, in one sentence naming the file (and line) and the fix."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from engine.data_check import check_data
from engine.data_files import read_records
from engine.errors import DataError
from engine.run_store import RunStore
from lf_tui.run_setup import RunSetupError, create_run, model_refusal
from methods.validation import validate_config

GOOD = {"instruction": "Say hi.", "output": "Hi."}


def _config(**doc):
    resolved = validate_config({"method": "lora", "training": {"max_steps": 2}, **doc})
    assert resolved.config is not None, resolved.report.to_dict()
    return resolved.config


def _refused(store: RunStore, config, dataset: str | None, cwd: Path) -> str:
    with pytest.raises(RunSetupError) as caught:
        create_run(store, config, dataset, None, cwd)
    assert not store.root.exists() or list(store.root.iterdir()) == []  # no run folder was made
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    return message


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_bad_data_files_are_refused_with_file_line_and_fix(cwd: Path) -> None:
    store = RunStore(cwd / "runs")
    (cwd / "array.jsonl").write_text(json.dumps([GOOD, GOOD], indent=1) + "\n")
    (cwd / "binary.jsonl").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00" * 50)
    (cwd / "bad.jsonl").write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n{'instruction': 1}\n")
    (cwd / "shape.jsonl").write_text(json.dumps(GOOD) + "\n" + json.dumps({"prompt": "a"}) + "\n")
    cfg = _config()
    assert _refused(store, cfg, "array.jsonl", cwd) == (
        f"{cwd / 'array.jsonl'}: line 1: holds a JSON array, not JSON lines (one object per line); rename it to "
        "array.json (a .json file may hold a list of records)")
    assert _refused(store, cfg, "binary.jsonl", cwd).startswith(f"{cwd / 'binary.jsonl'}: is a binary file, not text")
    assert _refused(store, cfg, "bad.jsonl", cwd).startswith(f"{cwd / 'bad.jsonl'}: line 3: not JSON (")
    assert _refused(store, cfg, "shape.jsonl", cwd).startswith(
        f"{cwd / 'shape.jsonl'}: line 2: missing field 'instruction' of the alpaca format")
    # data.eval_path in a config file resolves against the file's folder, and is checked too
    (cwd / "proj").mkdir()
    (cwd / "proj" / "eval.jsonl").write_text(json.dumps([GOOD]) + "\n")
    message = _refused(store, _config(data={"eval_path": "eval.jsonl"}), None, cwd / "proj")
    assert message.startswith(f"{cwd / 'proj' / 'eval.jsonl'}: line 1: holds a JSON array")
    # the bundled sample, checked against the config's format: chat data it is not
    assert "missing field 'messages' of the chat format" in _refused(store, _config(data={"format": "chat"}), None, cwd)


def test_the_engine_reads_an_array_saved_as_jsonl_in_the_same_words(tmp_path: Path) -> None:
    (tmp_path / "one_line.jsonl").write_text(json.dumps([GOOD]) + "\n")
    with pytest.raises(DataError) as caught:
        read_records(tmp_path / "one_line.jsonl")  # what the engine calls, whole file
    assert caught.value.message == f"{tmp_path / 'one_line.jsonl'}: line 1: holds a JSON array, not JSON lines " \
                                   "(one object per line)" and "rename it to one_line.json" in caught.value.hint


def test_the_check_reads_only_the_head_and_a_good_file_passes(cwd: Path) -> None:
    lines = [json.dumps(GOOD)] * 150 + ["not json"]
    (cwd / "long.jsonl").write_text("\n".join(lines) + "\n")
    assert check_data(cwd / "long.jsonl", _config().data) == "alpaca"  # line 151 is the engine's to find
    with pytest.raises(DataError, match="line 151: not JSON"):
        check_data(cwd / "long.jsonl", _config().data, limit=200)
    run = create_run(RunStore(cwd / "runs"), _config(), "long.jsonl", None, cwd)
    assert run.meta()["dataset"] == str(cwd / "long.jsonl")


def test_a_hub_model_neither_cached_nor_reachable_is_refused(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore(cwd / "runs")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: unreachable at once
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cwd / "empty-hf-cache"))
    monkeypatch.setattr("engine.planning.HUB_ANSWERS", {})
    model = f"lf-tui-tests/not-cached-{secrets.token_hex(4)}"
    message = _refused(store, _config(base_model=model), None, cwd)
    assert message.startswith(f"base_model {model!r}: config.json is not in the Hugging Face cache and HF_HUB_OFFLINE "
                              "is set: download it where the hub is reachable")
    # the planner ships Llama-2-7B's shape (it plans offline), but the weights are on the hub
    assert "'meta-llama/Llama-2-7b-hf': config.json is not in the Hugging Face cache" in _refused(
        store, _config(base_model="meta-llama/Llama-2-7b-hf"), None, cwd)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    model = f"lf-tui-tests/not-cached-{secrets.token_hex(4)}"
    assert "the hub is unreachable" in _refused(store, _config(base_model=model), None, cwd)
    # a built-in model or a local folder is never refused for this (a missing folder is the engine's to explain)
    assert model_refusal("builtin:tiny-llama", cwd) is None
    assert model_refusal("./no-such-model", cwd) is None and model_refusal(str(cwd / "absent"), cwd) is None


class _CheckedTooEarly(RunStore):
    """A store that looked writable when checked (the disk fills, or the folder turns read-only, just after)."""

    def writable_refusal(self) -> str | None:
        return None


def test_an_unwritable_store_is_a_run_setup_error_for_the_app(cwd: Path) -> None:
    (cwd / "afile").write_text("x")
    message = _refused(RunStore(cwd / "afile" / "runs"), _config(), None, cwd)
    assert message.startswith(f"the runs folder {cwd / 'afile' / 'runs'} cannot be made ({cwd / 'afile'} is a file")
    with pytest.raises(RunSetupError, match=f"the runs folder {cwd / 'afile'} is not a folder: give a writable"):
        create_run(_CheckedTooEarly(cwd / "afile"), _config(), None, None, cwd)


def test_the_cli_refuses_a_bad_dataset_before_a_run_folder_exists(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "data.jsonl").write_text(json.dumps([GOOD]) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    done = subprocess.run([str(Path(sys.executable).with_name("lf-tui")), "quick-train", "-m", "lora", "--dataset",
                           "data.jsonl", "--detach"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'data.jsonl'}: line 1: holds a JSON array, not JSON lines (one object per line); rename "
        "it to data.json (a .json file may hold a list of records)")
    assert list((tmp_path / "runs").iterdir()) == []
