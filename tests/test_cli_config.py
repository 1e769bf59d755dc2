"""`lf-tui validate-config` and `lf-tui methods` as a user runs them: exit codes, --json, migration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lf_tui.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_valid_example_exits_0(capsys) -> None:
    code, out, _ = run(capsys, "validate-config", "--method", "lora", "--config", str(ROOT / "methods/lora/examples/basic.json"))
    assert code == 0 and "valid" in out


def test_invalid_exits_1_and_lists_every_error(capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"method": "lora", "method_specific": {"r": 512}, "training": {"epochs": 0}}, indent=2))
    code, out, _ = run(capsys, "validate-config", "--config", str(cfg))
    assert code == 1 and "(2 errors)" in out and ", 0 warnings" in out
    assert "method_specific.r: 512 is above the maximum 256 (LoRA rank; typical 8-64)" in " ".join(out.split())
    assert "training.epochs" in out


def test_json_report(capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"method": "lora", "method_specific": {"r": 512, "lora_alfa": 1}}))
    code, out, _ = run(capsys, "validate-config", "--config", str(cfg), "--json", "--lenient")
    data = json.loads(out)
    assert code == 1 and data["valid"] is False
    _, table, _ = run(capsys, "validate-config", "--config", str(cfg), "--lenient")
    assert "invalid (1 error)" in table and "config, 1 warning\n" in table
    assert data["errors"][0]["path"] == "method_specific.r" and data["errors"][0]["value"] == 512
    assert data["warnings"][0]["hint"] == "did you mean 'lora_alpha'?"
    code, out, _ = run(capsys, "validate-config", "--config", str(cfg), "--json")  # strict: the typo is an error
    data = json.loads(out)
    assert code == 1 and {e["path"] for e in data["errors"]} == {"method_specific.r", "method_specific.lora_alfa"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), (b'{"method": "lora",\n  "r": }', "line 2 column"), (b"\xff\xfe{}", "not UTF-8")],
)
def test_unusable_input_exits_2(capsys, tmp_path: Path, content: bytes | None, expected: str) -> None:
    cfg = tmp_path / "c.json"
    if content is not None:
        cfg.write_bytes(content)
    code, _, err = run(capsys, "validate-config", "--config", str(cfg))
    assert code == 2 and expected in err and str(cfg) in err


def test_method_disagreeing_with_file_is_an_error(capsys) -> None:
    code, out, _ = run(capsys, "validate-config", "-m", "lora", "-c", str(ROOT / "methods/qlora/examples/basic.json"))
    assert code == 1 and "--method" in out


def test_migration_is_reported_and_written_on_request(capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "old.json"
    original = {"method": "lora", "version": "1.0", "training": {"num_train_epochs": 2}}
    cfg.write_text(json.dumps(original))
    code, out, _ = run(capsys, "validate-config", "-c", str(cfg))
    assert code == 0 and "migrated" in out and "--write-upgraded" in out
    assert json.loads(cfg.read_text()) == original  # nothing written unasked
    code, out, _ = run(capsys, "validate-config", "-c", str(cfg), "--write-upgraded")
    upgraded = json.loads(cfg.read_text())
    assert code == 0 and upgraded["version"] == "2.0" and upgraded["training"] == {"epochs": 2}
    assert json.loads((tmp_path / "old.json.v1.0.bak").read_text()) == original


def test_methods_prints_matrix_and_recommendations(capsys) -> None:
    code, out, _ = run(capsys, "methods")
    assert code == 0
    for text in ("GPU Memory", "Production", "QLoRA", "Prefix tuning", "Memory Constrained", "4-bit quantization"):
        assert text in out
    for text in ("AdaLoRA", "IA³", "DoRA", "use_dora: true", "LoRA+"):  # new folders and variants, from their specs
        assert text in out
    code, out, _ = run(capsys, "methods", "--json")
    methods = json.loads(out)["methods"]
    assert [m["name"] for m in methods] == ["lora", "qlora", "full_finetune", "adapters", "prefix_tuning", "adalora",
                                            "ia3"]
    lora = methods[0]
    assert {"title": "DoRA", "options": {"use_dora": True}} == {k: lora["variants"][0][k] for k in ("title", "options")}
    assert lora["planned_memory"].endswith("GiB")


def test_installed_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "lf-tui"
    proc = subprocess.run([str(exe), "validate-config", "-c", str(ROOT / "methods/lora/examples/production.json"), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["method"] == "lora"
