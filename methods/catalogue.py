"""Discovers method folders (here and under $LF_TUI_METHODS_PATH) and exposes their metadata, rules and code."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from methods.config_models import MethodConfigBase, config_model_for
from methods.contract import IMPLEMENTATION_ATTRIBUTE, MethodImplementation
from methods.method_info import Finding, MethodInfo

METHODS_DIR = Path(__file__).resolve().parent
METHODS_PATH_ENV = "LF_TUI_METHODS_PATH"  # extra method roots, separated by ":" (os.pathsep)


@dataclass(frozen=True)
class Method:
    """A discovered method folder."""

    info: MethodInfo
    folder: Path
    config_model: type[MethodConfigBase]

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def readme_path(self) -> Path:
        return self.folder / "README.md"

    @property
    def defaults_path(self) -> Path:
        return self.folder / "defaults.json"

    def example_path(self, name: str) -> Path:
        return self.folder / "examples" / f"{name}.json"

    def defaults(self) -> dict[str, Any]:
        """The method's defaults.json (nested form)."""
        return json.loads(self.defaults_path.read_text(encoding="utf-8"))

    def implementation(self) -> MethodImplementation:
        """The method's implementation, loaded from its folder by path (heavy: only the engine calls this)."""
        module = _load_module(self.folder, "implementation")
        impl = getattr(module, IMPLEMENTATION_ATTRIBUTE, None)
        if not isinstance(impl, MethodImplementation):
            raise TypeError(f"{self.folder / 'implementation.py'}: {IMPLEMENTATION_ATTRIBUTE} must be an instance of a "
                            f"methods.contract.MethodImplementation subclass, got {type(impl).__name__}")
        return impl

    def check(self, cfg: MethodConfigBase) -> list[Finding]:
        """What the method's own validation rules (its spec's `rules`) find in a config that validated."""
        return [issue for rule in self.info.rules for issue in rule(cfg)]


class Catalogue:
    """All methods found under the method roots, ordered as they declare."""

    def __init__(self, methods: list[Method]):
        self._methods = {m.name: m for m in sorted(methods, key=lambda m: (m.info.order, m.name))}

    @classmethod
    def discover(cls, root: Path = METHODS_DIR, *more_roots: Path) -> Catalogue:
        """Every folder with a spec.py directly under the roots; a method's name is its folder's name."""
        found: dict[str, Method] = {}
        for base in (root, *more_roots):
            for folder in sorted(p for p in Path(base).iterdir() if (p / "spec.py").is_file()):
                if folder.name in found:
                    raise ValueError(f"two methods named {folder.name!r}: {found[folder.name].folder} and {folder}")
                info: MethodInfo = _load_module(folder, "spec").METHOD
                info = dataclasses.replace(info, name=folder.name)
                found[folder.name] = Method(info, folder, config_model_for(info.name, info.spec_model))
        return cls(list(found.values()))

    def names(self) -> list[str]:
        return list(self._methods)

    def __iter__(self) -> Iterator[Method]:
        return iter(self._methods.values())

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def get(self, name: str) -> Method:
        try:
            return self._methods[name]
        except KeyError:
            raise KeyError(f"unknown method {name!r}; known: {', '.join(self._methods)}") from None

    def use_case_table(self) -> list[tuple[str, str, str, str]]:
        """Rows of (use case, primary, secondary, notes) assembled from every method's declarations."""
        rows: dict[str, dict[str, str]] = {}
        for method in self:
            for uc in method.info.use_cases:
                row = rows.setdefault(uc.use_case, {"primary": "", "secondary": "", "notes": ""})
                if uc.role == "primary":
                    row["primary"] = method.info.title
                    row["notes"] = uc.notes or row["notes"]
                else:  # every method that offers itself as the second choice, in catalogue order
                    shown = uc.notes if uc.notes and "(" in uc.notes else method.info.title
                    row["secondary"] = f"{row['secondary']}, {shown}" if row["secondary"] else shown
        return [(k, v["primary"], v["secondary"], v["notes"]) for k, v in rows.items()]


def _package_name(folder: Path) -> str:
    """methods.<name> for a folder of this package; elsewhere a name unique to the folder's path."""
    folder = folder.resolve()
    if folder.parent == METHODS_DIR:
        return f"methods.{folder.name}"
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:10]
    return f"lf_tui_method_{''.join(c if c.isalnum() else '_' for c in folder.name)}_{digest}"


def _load_module(folder: Path, module: str) -> ModuleType:
    """Import `module` (spec or implementation) of a method folder, the folder imported as a package by its path,
    so relative imports inside it (`from . import targets`) work and two folders with the same files never clash."""
    package = _package_name(folder)
    if package not in sys.modules and not package.startswith("methods."):
        init = folder / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(folder)])
        else:  # a folder without __init__.py: a package with no code of its own
            spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
        if spec is None:
            raise ImportError(f"{folder}: cannot be imported as a method package")
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[package] = pkg
        try:
            if spec.loader is not None:
                spec.loader.exec_module(pkg)
        except BaseException:
            del sys.modules[package]
            raise
    return importlib.import_module(f"{package}.{module}")


def method_roots(environ: Any = None) -> list[Path]:
    """This package's folder, then every existing folder named in $LF_TUI_METHODS_PATH (":"-separated)."""
    extra = (os.environ if environ is None else environ).get(METHODS_PATH_ENV, "")
    roots = [METHODS_DIR]
    for entry in extra.split(os.pathsep):
        path = Path(entry).expanduser().resolve() if entry.strip() else None
        if path is not None and path.is_dir() and path not in roots:
            roots.append(path)
    return roots


def get_catalogue() -> Catalogue:
    """The catalogue of this installation plus $LF_TUI_METHODS_PATH (cached per value of that variable)."""
    return _catalogue_of(tuple(method_roots()))


@lru_cache(maxsize=8)
def _catalogue_of(roots: Sequence[Path]) -> Catalogue:
    return Catalogue.discover(*roots)
