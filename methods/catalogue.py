"""Discovers method folders and exposes their metadata, defaults, examples and READMEs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from methods.config_models import MethodConfigBase, config_model_for
from methods.method_info import MethodInfo

METHODS_DIR = Path(__file__).resolve().parent


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

    def implementation(self) -> Any:
        """Import the method's implementation module (heavy: only the engine calls this)."""
        return importlib.import_module(f"methods.{self.name}.implementation")


class Catalogue:
    """All methods found under methods/, ordered as they declare."""

    def __init__(self, methods: list[Method]):
        self._methods = {m.name: m for m in sorted(methods, key=lambda m: (m.info.order, m.name))}

    @classmethod
    def discover(cls, root: Path = METHODS_DIR) -> Catalogue:
        found = []
        for folder in sorted(p for p in root.iterdir() if (p / "spec.py").is_file()):
            info: MethodInfo = _load_spec(folder).METHOD
            if info.name != folder.name:
                raise ValueError(f"{folder}/spec.py declares method {info.name!r}; the folder is {folder.name!r}")
            found.append(Method(info, folder, config_model_for(info.name, info.spec_model)))
        return cls(found)

    def names(self) -> list[str]:
        return list(self._methods)

    def __iter__(self):
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
                elif not row["secondary"]:
                    row["secondary"] = uc.notes if uc.notes and "(" in uc.notes else method.info.title
        return [(k, v["primary"], v["secondary"], v["notes"]) for k, v in rows.items()]


def _load_spec(folder: Path) -> Any:
    """Import a method folder's spec.py: as methods.<name>.spec inside this package, by path elsewhere."""
    if folder.parent.resolve() == METHODS_DIR:
        return importlib.import_module(f"methods.{folder.name}.spec")
    name = f"lf_tui_method_{folder.name}_spec"
    spec = importlib.util.spec_from_file_location(name, folder / "spec.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@lru_cache(maxsize=1)
def get_catalogue() -> Catalogue:
    """The catalogue of this installation (cached)."""
    return Catalogue.discover()
