"""Deployment figures: measured by the engine at the end of training (sizes against the files and the exported model,
timings of a short greedy answer), never failing a run, and shown the same way by the runs table, the run summary
and the comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import deployment
from engine.export import export
from engine.run_store import RunDir, RunInfo, RunStore
from lf_tui.present import run_text
from lf_tui.present.formatting import disk_size, rate, seconds
from lf_tui.present.runs_table import SORT_KEYS, cells, columns_for, row
from tests.conftest import LEARNABLE, make_config, train
from tests.tiny_models import save_tiny_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    root = tmp_path_factory.mktemp("deployment")
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    run, _, code = train(RunStore(root / "runs"), make_config("lora", training={"max_steps": 2},
                                                              hardware={"mixed_precision": "no"}), dataset)
    assert code == 0, (run.path / "engine.log").read_text()[-3000:]
    return run


def test_a_trained_run_s_summary_has_its_deployment_figures(trained: RunDir, tmp_path: Path) -> None:
    figures = (trained.summary() or {})["deployment"]
    assert figures["adapter_bytes"] == sum(p.stat().st_size for p in trained.weights_dir.rglob("*") if p.is_file())
    assert figures["first_token_s"] > 0 and figures["tokens_per_s"] > 0 and figures["new_tokens"] >= 1
    assert figures["device"].startswith("cpu (") and "not_measured" not in figures and figures["samples"] == 3
    # merged size: the parameters the merged export writes, 4 bytes each (fp32, the built-in model's dtype)
    export(trained.path, tmp_path / "merged", merged=True)
    from safetensors.torch import load_file

    values = sum(t.numel() for file in (tmp_path / "merged").glob("*.safetensors")
                 for t in load_file(str(file)).values())
    assert figures["merged_dtype"] == "fp32" and figures["merged_bytes"] == 4 * values == 4 * figures["merged_params"]
    log = trained.events_path.read_text()
    assert "deployment figures: adapter_bytes=" in log


def test_full_finetune_and_adapters_that_cannot_merge(tmp_path: Path) -> None:
    model = save_tiny_model(tmp_path / "llama", "llama")
    full = deployment.sizes(make_config("full_finetune"), model)
    assert full["merged_bytes"] == full["adapter_bytes"] == deployment.folder_bytes(model) > 0
    (tmp_path / "prefix").mkdir()
    (tmp_path / "prefix" / "weights.bin").write_bytes(b"x" * 1000)
    prefix = deployment.sizes(make_config("prefix_tuning"), tmp_path / "prefix")
    assert prefix["adapter_bytes"] == 1000 and prefix["merged_bytes"] is None
    assert prefix["merged_note"].startswith("cannot merge")


def test_timings_are_the_medians_of_three_generations_after_a_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import generation_timing
    from engine.models import Runtime

    figures = iter([(9.0, 1.0), (0.695, 10.0), (0.042, 300.0), (0.05, 250.0), (5.0, 5.0)])  # warm-up, 3 timed, spare
    calls = []

    def complete(model: Any, impl: Any, tokenizer: Any, runtime: Any, text: str, max_new_tokens: int) -> Any:
        calls.append(max_new_tokens)
        first, rate_ = next(figures)
        return {"first_token_s": first, "tokens_per_s": rate_, "new_tokens": max_new_tokens}

    import torch

    monkeypatch.setattr(generation_timing, "complete", complete)
    runtime = Runtime(device=torch.device("cpu"))
    got = deployment.timings(NoMemoryModel(), None, None, runtime, "alpaca")
    assert calls == [1, deployment.NEW_TOKENS, deployment.NEW_TOKENS, deployment.NEW_TOKENS]
    assert got["first_token_s"] == 0.05 and got["tokens_per_s"] == 250.0 and got["samples"] == 3
    assert got["new_tokens"] == deployment.NEW_TOKENS


class OutOfMemoryError(RuntimeError):
    """What torch raises when the device has no memory left (the same name)."""


class NoMemoryModel:
    """A model whose generation runs out of memory."""

    training = False

    def eval(self) -> NoMemoryModel:
        return self

    def generate(self, **kwargs: Any) -> Any:
        raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_a_failure_to_measure_is_recorded_never_raised(trained: RunDir) -> None:
    import torch

    from engine.models import Runtime, load_tokenizer
    from engine.runner import load_run_config

    cfg = load_run_config(trained)
    figures = deployment.measure(NoMemoryModel(), None, load_tokenizer(cfg), Runtime(torch.device("cpu")), cfg,
                                 trained.weights_dir, "alpaca")
    assert figures["first_token_s"] is None and figures["tokens_per_s"] is None
    assert figures["not_measured"].startswith("timings: out of memory")
    assert figures["adapter_bytes"] > 0 and figures["merged_bytes"] > 0  # the sizes are measured apart

    class Broken:
        cfg = runtime = impl = data_format = model = None

    lines: list[str] = []
    broken = deployment.after_training(Broken(), trained.weights_dir, lambda level, message: lines.append(level))
    assert broken["not_measured"] and lines == ["warning"]


FIGURES = {"adapter_bytes": 123116, "merged_bytes": 3674624, "merged_dtype": "fp32", "first_token_s": 0.0186,
           "tokens_per_s": 65.04, "device": "cpu (2 threads)"}


def test_one_wording_for_the_runs_table_the_summary_and_the_comparison() -> None:
    fields = run_text.deployment_fields(FIGURES)
    assert fields == {"adapter size": "120 KiB", "merged size": "3.5 MiB (fp32)", "first token": "18.6 ms",
                      "tokens/s": "65.0", "measured on": "cpu (2 threads)"}
    rows = dict(run_text.summary_rows({"status": "completed", "deployment": FIGURES}))
    assert all(rows[k] == v for k, v in fields.items())
    assert "adapter size" not in dict(run_text.summary_rows({"status": "completed"}))  # from before the figures
    info = RunInfo("20260101-000000-lora-ab12", Path("x"), method="lora", status="completed", deployment=FIGURES,
                   derived_from=["20251231-000000-lora-1111", "20251231-000000-lora-2222"])
    by_key = cells(info)
    assert by_key["adapter_bytes"] == "120 KiB" and by_key["tokens_per_s"] == "65.0"
    assert by_key["derived_from"] == "lora-1111+lora-2222"
    assert dict(zip(SORT_KEYS, row(info)))["adapter_bytes"] == fields["adapter size"]
    assert "derived_from" in columns_for(150)[0] and "adapter_bytes" in columns_for(200)[0]
    missing = run_text.deployment_fields({"adapter_bytes": 10, "not_measured": "timings: out of memory: CUDA"})
    assert missing["first token"] == "—" and missing["measured on"] == "not measured: timings: out of memory: CUDA"
    labels = run_text.compared_labels([{}, {"derived_from": ["a", "b"], "fusion": {"weights": [1, 2],
                                                                                    "combination": "cat"}}])
    assert labels[0] == "status" and "fused from" in labels and "tokens/s" not in labels
    labels = run_text.compared_labels([{}, {"deployment": FIGURES}])
    assert labels.index("tokens/s") > labels.index("convergence")  # a row for every run, — where one has none


def test_formats() -> None:
    assert [disk_size(n) for n in (None, 512, 2048, 150 * 2 ** 20, 14.2 * 2 ** 30)] == [
        "—", "512 B", "2.0 KiB", "150 MiB", "14.2 GiB"]
    assert [seconds(s) for s in (None, 0.00085, 0.0186, 1.234)] == ["—", "850 µs", "18.6 ms", "1.23 s"]
    assert [rate(r) for r in (None, 7.25, 1234.4)] == ["—", "7.2", "1,234"]


async def test_the_run_view_s_summary_shows_the_figures(trained: RunDir) -> None:
    from textual.widgets import Static

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.run_screen import RunScreen
    from lf_tui.screens.runs_screen import RunsScreen
    from tests.tui_helpers import wait_for

    app = LfTuiApp(runs_dir=trained.path.parent)
    fields = run_text.deployment_fields((trained.summary() or {})["deployment"])

    def summary_text() -> str:
        return str(app.screen.query_one("#summary", Static).render()) if isinstance(app.screen, RunScreen) else ""

    async with app.run_test(size=(150, 46)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.current_id == trained.run_id,
                       what="the run listed")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "tokens/s" in summary_text(), what="the summary")
        text = summary_text()
        assert f"adapter size {fields['adapter size']}" in text and f"tokens/s {fields['tokens/s']}" in text
