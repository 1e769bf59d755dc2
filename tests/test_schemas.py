"""The committed JSON schemas and README tables match the pydantic models, and extend the base schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from referencing import Registry, Resource

from methods.catalogue import METHODS_DIR, get_catalogue
from methods.schemas import rendered
from methods.validation import validate_config


@pytest.mark.parametrize("rel", sorted(rendered()))
def test_committed_file_is_fresh(rel: str) -> None:
    committed = (METHODS_DIR / rel).read_text(encoding="utf-8")
    assert committed == rendered()[rel], f"methods/{rel} is stale: run `python -m methods.schemas`"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    base = json.loads((METHODS_DIR / "base_schema.json").read_text())
    schema = json.loads((METHODS_DIR / name / "config_schema.json").read_text())
    registry = Registry().with_resource("base_schema.json", Resource.from_contents(base))
    return jsonschema.Draft202012Validator(schema, registry=registry)


@pytest.mark.parametrize("name", get_catalogue().names())
def test_method_schema_extends_base_and_accepts_resolved_configs(name: str) -> None:
    method = get_catalogue().get(name)
    validator = _validator(name)
    for path in [method.defaults_path, *(method.example_path(n) for n in ("basic", "advanced", "production"))]:
        resolved = validate_config(json.loads(path.read_text()))
        validator.validate({"method_config": resolved.config.model_dump(mode="json")})
    bad = {"method_config": {**method.defaults()["method_config"], "training": {"epochs": 0}}}
    assert not validator.is_valid(bad)


def test_each_method_folder_is_complete() -> None:
    for method in get_catalogue():
        for rel in ("README.md", "config_schema.json", "defaults.json", "implementation.py", "tests",
                    "examples/basic.json", "examples/advanced.json", "examples/production.json"):
            assert (method.folder / rel).exists(), f"{method.folder / rel} is missing"
