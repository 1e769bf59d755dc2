"""Adding a method is adding a folder: the catalogue, recommendations, validation and schemas pick it up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from methods.catalogue import METHODS_DIR, Catalogue
from methods.schemas import method_schema
from methods.validation import validate_config

SPEC = '''
from pydantic import Field
from methods.config_models import MethodSpecific
from methods.method_info import MatrixRow, MethodInfo, UseCase


class Ia3Specific(MethodSpecific):
    target_modules: list[str] = Field(default_factory=lambda: ["k_proj", "v_proj"], min_length=1,
                                      description="modules whose activations are rescaled")


METHOD = MethodInfo(name="ia3", title="IA3", summary="Learned rescaling vectors.", order=6,
                    matrix=MatrixRow("10GB", "Very Fast", "90-94%", True, True, "partial"),
                    spec_model=Ia3Specific, lr_range=(1e-4, 1e-2),
                    use_cases=(UseCase("Tiny Artefacts", "primary", "a few KB per task"),))
'''


def test_a_new_folder_appears_everywhere(tmp_path: Path) -> None:
    root = tmp_path / "methods"
    shutil.copytree(METHODS_DIR / "lora", root / "lora")
    (root / "ia3").mkdir()
    (root / "ia3" / "spec.py").write_text(SPEC)
    (root / "ia3" / "defaults.json").write_text(json.dumps({"method_config": {"method_name": "ia3"}}))
    catalogue = Catalogue.discover(root)
    assert catalogue.names() == ["lora", "ia3"]
    assert ("Tiny Artefacts", "IA3", "", "a few KB per task") in catalogue.use_case_table()
    ok = validate_config({"method": "ia3", "method_specific": {"target_modules": ["q_proj"]}}, catalogue=catalogue)
    assert ok.report.ok and ok.config.method_specific.target_modules == ["q_proj"]
    bad = validate_config({"method": "ia3", "method_specific": {"target_modules": []}}, catalogue=catalogue)
    assert bad.report.errors[0].path == "method_specific.target_modules"
    schema = method_schema(catalogue, "ia3")
    assert schema["allOf"][1]["properties"]["method_config"]["properties"]["method_name"] == {"const": "ia3"}
