"""A method folder outside the package (a root in $LF_TUI_METHODS_PATH) is a method: listed, validated, trained."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import launcher
from engine.run_store import RunDir
from methods import catalogue as catalogue_module
from methods.catalogue import METHODS_DIR, METHODS_PATH_ENV, Catalogue, get_catalogue
from methods.contract import MethodImplementation
from methods.validation import validate_config

LF_TUI = Path(sys.executable).with_name("lf-tui")


def copy_lora(root: Path, name: str = "my_lora") -> Path:
    shutil.copytree(METHODS_DIR / "lora", root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root / name


def test_a_root_in_the_environment_adds_its_folders_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = get_catalogue().names()
    copy_lora(tmp_path)
    monkeypatch.setenv(METHODS_PATH_ENV, f"{tmp_path / 'missing'}{os.pathsep}{tmp_path}")
    catalogue = get_catalogue()
    assert catalogue.names() == ["lora", "my_lora", *builtin[1:]]
    method = catalogue.get("my_lora")
    assert method.name == method.info.name == "my_lora" and method.folder == tmp_path / "my_lora"
    resolved = validate_config({"method": "my_lora", "method_specific": {"r": 8, "lora_alpha": 4}})
    assert resolved.report.ok and resolved.config is not None and resolved.config.method_name == "my_lora"
    assert [w.path for w in resolved.report.warnings] == ["method_specific.lora_alpha"]  # the copy's own rule
    monkeypatch.delenv(METHODS_PATH_ENV)
    assert get_catalogue().names() == builtin  # nothing leaks once the variable is gone


def test_the_implementation_loads_from_its_folder_with_relative_imports(tmp_path: Path) -> None:
    one, two = copy_lora(tmp_path, "lora_one"), copy_lora(tmp_path, "lora_two")
    catalogue = Catalogue.discover(METHODS_DIR, tmp_path)
    first, second = catalogue.get("lora_one").implementation(), catalogue.get("lora_two").implementation()
    assert isinstance(first, MethodImplementation) and isinstance(second, MethodImplementation)
    first_module, second_module = sys.modules[type(first).__module__], sys.modules[type(second).__module__]
    assert Path(first_module.__file__ or "") == one / "implementation.py"
    assert Path(second_module.__file__ or "") == two / "implementation.py"
    assert Path(first_module.lora_targets.__file__) == one / "targets.py"  # `from . import targets`: the copy's
    assert catalogue.get("lora").implementation() is sys.modules["methods.lora.implementation"].IMPLEMENTATION


def test_two_methods_of_one_name_are_refused(tmp_path: Path) -> None:
    copy_lora(tmp_path, "lora")
    with pytest.raises(ValueError, match="two methods named 'lora'"):
        Catalogue.discover(METHODS_DIR, tmp_path)


def test_an_implementation_must_satisfy_the_contract(tmp_path: Path) -> None:
    folder = copy_lora(tmp_path, "broken")
    (folder / "implementation.py").write_text("IMPLEMENTATION = object()\n")
    with pytest.raises(TypeError, match="MethodImplementation"):
        Catalogue.discover(tmp_path).get("broken").implementation()


def test_the_engine_gets_the_roots_as_absolute_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert launcher.METHODS_PATH_ENV == catalogue_module.METHODS_PATH_ENV
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(METHODS_PATH_ENV, f"roots{os.pathsep}/abs")
    assert launcher.engine_env()[METHODS_PATH_ENV] == f"{tmp_path / 'roots'}{os.pathsep}/abs"


def lf_tui(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LF_TUI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.skipif(not LF_TUI.exists(), reason="the lf-tui script is not installed beside this interpreter")
def test_a_copied_folder_lists_validates_trains_and_generates(tmp_path: Path) -> None:
    copy_lora(tmp_path / "roots")
    env = {**os.environ, METHODS_PATH_ENV: "roots", "LF_TUI_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    listed = lf_tui(["methods", "--json"], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    assert "my_lora" in [m["name"] for m in json.loads(listed.stdout)["methods"]]
    (tmp_path / "config.json").write_text(json.dumps({"method": "my_lora", "training": {"max_steps": 3}}))
    checked = lf_tui(["validate-config", "--config", "config.json", "--json"], tmp_path, env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    trained = lf_tui(["quick-train", "-m", "my_lora", "--max-steps", "3", "--plain"], tmp_path, env)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    (run,) = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    started = json.loads(RunDir(run).events_path.read_text().splitlines()[0])
    assert started["type"] == "run_started" and started["method"] == "my_lora", started
    answered = lf_tui(["generate", "--run", run.name, "--prompt", "hi", "--max-new-tokens", "4", "--json"], tmp_path,
                      env)
    assert answered.returncode == 0, answered.stdout[-3000:] + answered.stderr[-3000:]
    result = json.loads(answered.stdout.strip().splitlines()[-1])
    assert result["prompt"] == "hi" and isinstance(result["completion"], str)
