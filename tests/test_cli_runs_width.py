"""`lf-tui runs` in an 80-column terminal: whole run ids and statuses, the least useful columns dropped."""

from __future__ import annotations

import argparse
import io

from rich.console import Console

from engine.protocol import RunStarted, Step
from engine.run_store import RunStore
from lf_tui.cli import console
from lf_tui.cli import runs as cli_runs


def _listing(monkeypatch, store: RunStore, width: int) -> str:
    buffer = io.StringIO()
    monkeypatch.setattr(console, "out", lambda: Console(file=buffer, width=width, highlight=False))
    assert cli_runs.run(argparse.Namespace(runs_dir=str(store.root), json=False)) == 0
    return buffer.getvalue()


def test_runs_table_fits_80_columns_with_whole_ids(monkeypatch, tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    for method in ("lora", "prefix_tuning"):
        run = store.create(method, {"base_model": "some-org/a-very-long-base-model-name-7b", "method_name": method})
        run.events_path.write_text(RunStarted(run_id=run.run_id, method=method, total_steps=156).to_line()
                                   + Step(step=47, loss=3.5612, total_steps=156).to_line())
    ids = [r.run_id for r in store.list()]
    narrow = _listing(monkeypatch, store, 80)
    assert all(len(line) <= 80 for line in narrow.splitlines())
    for run_id in ids:
        assert run_id in narrow
    assert "prefix_tuning" in narrow and "47/156" in narrow and "starting" in narrow and "…" not in narrow
    wide = _listing(monkeypatch, store, 160)
    assert "base model" in wide and "started" in wide and "base model" not in narrow
