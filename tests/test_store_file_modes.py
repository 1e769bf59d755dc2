"""Files the project writes follow the umask (a team sharing a GPU box reads each other's configs and runs)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.run_store import CONFIG, META, RunStore
from lf_common.files import atomic_write_text, write_json


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


def test_follow_umask_opens_what_libraries_make_private(tmp_path: Path, umask: None) -> None:
    """safetensors writes its files 0600 and mkdtemp makes 0700 folders: a run's weights must be shareable too."""
    import tempfile

    from lf_common.files import current_umask, follow_umask

    assert current_umask() == 0o002
    stage = Path(tempfile.mkdtemp(dir=tmp_path))
    fd = os.open(stage / "adapter_model.safetensors", os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    (stage / "sub").mkdir(mode=0o700)
    (stage / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (stage / "sub" / "run.sh").chmod(0o700)
    assert _mode(stage) == 0o700 and _mode(stage / "adapter_model.safetensors") == 0o600
    follow_umask(stage)
    assert [_mode(p) for p in (stage, stage / "adapter_model.safetensors", stage / "sub", stage / "sub" / "run.sh")] \
        == [0o775, 0o664, 0o775, 0o775]
    os.umask(0o077)
    follow_umask(stage / "adapter_model.safetensors")
    assert _mode(stage / "adapter_model.safetensors") == 0o600
