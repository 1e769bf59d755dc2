"""Files the project writes follow the umask (a team sharing a GPU box reads each other's configs and runs)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.run_store import CONFIG, META, RunStore
from lf_common.files import atomic_write_text, write_json


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_mode_open_gives(tmp_path: Path, umask: None) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "a.json", "{}")
    write_json(tmp_path / "sub" / "b.json", {"a": 1})
    assert _mode(tmp_path / "a.json") == _mode(plain) == 0o664
    assert _mode(tmp_path / "sub" / "b.json") == 0o664
    os.umask(0o077)
    write_json(tmp_path / "private.json", {})
    assert _mode(tmp_path / "private.json") == 0o600
    (tmp_path / "a.json").chmod(0o640)  # written over: the file keeps its mode, as open(path, "w") does
    atomic_write_text(tmp_path / "a.json", "[]")
    assert _mode(tmp_path / "a.json") == 0o640 and (tmp_path / "a.json").read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "plain.txt", "private.json", "sub"]


def test_a_new_run_folder_s_files_follow_the_umask(tmp_path: Path, umask: None) -> None:
    run = RunStore(tmp_path / "runs").create("lora", {"base_model": "builtin:tiny-llama"})
    assert _mode(run.file(CONFIG)) == _mode(run.file(META)) == 0o664
