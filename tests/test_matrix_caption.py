"""The methods matrix's memory row says what it assumes (device, precision, batch, runtime), in the CLI."""

from __future__ import annotations

from lf_tui.cli import main


def test_lf_tui_methods_says_what_the_memory_row_assumes(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["methods"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "memory: the planner's peak for each method's defaults on Llama-2-7B on a GPU (cuda bf16, batch" in out
    assert "the CUDA runtime included (a 600 MiB context" in out
    assert "lf-tui plan and the editor plan your config on your device" in out
