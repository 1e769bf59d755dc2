"""`pip install .` (not editable) must give a working lf-tui: the wheel holds every file the packages read at run time.

The wheel is built from a clean copy of the files git knows (tracked, plus new files it does not ignore), so a stale
build/ or *.egg-info in the working tree can neither hide a missing file nor add one; the installed copy is then
used from outside the source tree.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lf_tui", "engine", "methods", "lf_common")
# Read at run time by the app, the CLI or the engine; a wheel without any of these does not work.
RUNTIME_FILES = {"lf_tui/app.tcss", "engine/assets/tiny_tokenizer.json", "engine/assets/sample_alpaca.jsonl",
                 "methods/base_schema.json"}
METHOD_FILES = ("README.md", "config_schema.json", "defaults.json", "spec.py", "implementation.py",
                "examples/basic.json", "examples/advanced.json", "examples/production.json")


def _source_files() -> list[str]:
    """Files git knows in the working tree (tracked and new-but-not-ignored), as posix paths; skip without git."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"not a git checkout: {proc.stderr.decode(errors='replace').strip()}")
    return sorted(p for p in proc.stdout.decode().split("\0") if p and (ROOT / p).is_file())


def _shippable(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return parts[0] in PACKAGES and "tests" not in parts and "__pycache__" not in parts and not path.endswith(".pyc")


@pytest.fixture(scope="module")
def source_files() -> list[str]:
    return _source_files()


@pytest.fixture(scope="module")
def wheel(source_files: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for rel in source_files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("lf_tui-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if not n.endswith("/")}


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel unpacked as pip would install it (pure-Python wheel: the archive is the site-packages layout)."""
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return target


def test_wheel_holds_every_package_file(source_files: list[str], wheel_names: set[str]) -> None:
    expected = {p for p in source_files if _shippable(p)}
    data = {p for p in expected if not p.endswith(".py")}
    assert RUNTIME_FILES <= data, f"the source tree lost runtime files: {RUNTIME_FILES - data}"
    missing = sorted(expected - wheel_names)
    assert not missing, f"not in the wheel (add a pattern to [tool.setuptools.package-data]): {missing}"


def test_wheel_ships_nothing_else(source_files: list[str], wheel_names: set[str]) -> None:
    """No tests, no leftovers of an earlier build: every packaged file is one git knows."""
    known = set(source_files)
    packaged = {n for n in wheel_names if ".dist-info/" not in n}
    assert {PurePosixPath(n).parts[0] for n in packaged} == set(PACKAGES)
    assert sorted(n for n in packaged if "tests" in PurePosixPath(n).parts) == []
    assert sorted(packaged - known) == []


def test_wheel_declares_the_lf_tui_command(wheel: Path, wheel_names: set[str]) -> None:
    with zipfile.ZipFile(wheel) as zf:
        entry_points = next(n for n in wheel_names if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(entry_points).decode())
    assert dict(parser["console_scripts"]) == {"lf-tui": "lf_tui.cli:main"}


def test_installed_wheel_works_outside_the_source_tree(installed: Path, source_files: list[str], tmp_path: Path) -> None:
    """From the unpacked wheel alone: methods, their files, the stylesheet, the assets, and two real commands."""
    methods = sorted({PurePosixPath(p).parts[1] for p in source_files if p.startswith("methods/") and p.endswith("/spec.py")})
    assert len(methods) >= 5, methods
    script = textwrap.dedent(f"""
        import asyncio, json, sys
        from pathlib import Path
        site = Path({str(installed)!r})
        import engine, lf_tui, methods
        for module in (engine, lf_tui, methods):
            assert Path(module.__file__).is_relative_to(site), module.__file__
        from methods.catalogue import get_catalogue
        catalogue = get_catalogue()
        assert sorted(catalogue.names()) == {methods!r}, catalogue.names()
        for method in catalogue:
            assert method.folder.is_relative_to(site), method.folder
            for rel in {list(METHOD_FILES)!r}:
                assert (method.folder / rel).is_file(), (method.name, rel)
            json.loads((method.folder / "config_schema.json").read_text()); method.defaults()
        from engine.data_files import SAMPLE_DATASET
        from engine.builtin_model import ASSETS
        import tokenizers
        assert SAMPLE_DATASET.is_relative_to(site) and len(SAMPLE_DATASET.read_text().splitlines()) > 10
        assert tokenizers.Tokenizer.from_file(str(ASSETS / "tiny_tokenizer.json")).get_vocab_size() > 100
        from lf_tui.cli import main
        example = catalogue.get("lora").example_path("basic")
        assert main(["validate-config", "-m", "lora", "-c", str(example)]) == 0
        assert main(["methods"]) == 0
        from lf_tui.app import LfTuiApp
        from lf_tui.screens.methods_screen import MethodsScreen
        async def start():
            app = LfTuiApp(runs_dir={str(tmp_path / "runs")!r})
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                assert [Path(p) for p in app.css_path] == [site / "lf_tui" / "app.tcss"], app.css_path
                assert isinstance(app.screen, MethodsScreen), app.screen
        asyncio.run(start())
        print("INSTALLED-OK")
    """)
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "valid lora config" in proc.stdout
    assert "Quick selection matrix" in proc.stdout
    assert proc.stdout.rstrip().endswith("INSTALLED-OK")
