"""The run view and the run history, driven as a user would: start, watch, cancel, compare, survive junk."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, Static, TextArea

from engine.protocol import Step
from lf_tui.app import LfTuiApp
from lf_tui.screens.compare_screen import CompareScreen
from lf_tui.screens.editor_screen import EditorScreen
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.run_screen import RunScreen
from lf_tui.screens.runs_screen import RunsScreen
from lf_tui.widgets.dialogs import ConfirmScreen
from tests.conftest import make_config, start_run, train
from tests.tui_helpers import wait_for


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_start_watch_and_cancel_a_run(tmp_path, learnable_dataset) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        area = app.screen.query_one("#config", TextArea)
        doc = json.loads(area.text)
        doc["method_config"]["training"]["max_steps"] = 100000
        area.load_text(json.dumps(doc, indent=2))
        app.screen.query_one("#dataset", Input).value = str(learnable_dataset)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="run view")
        screen = app.screen
        await wait_for(pilot, lambda: screen.model.loss.count >= 3 and "tokens/s" in text_of(app, "#figures"),
                       what="steps to arrive")
        assert len(screen.model.loss) >= 3 and "tokens/s" in text_of(app, "#figures")
        await wait_for(pilot, lambda: "CPU" in text_of(app, "#gauges") or "GPU" in text_of(app, "#gauges"))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="cancel confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.model.finished is not None, timeout=120, what="run to stop")
        assert screen.model.finished.status == "cancelled"
        await wait_for(pilot, lambda: "Run cancelled" in text_of(app, "#summary"), what="summary")
        assert screen.run.latest_checkpoint() is not None


async def test_compare_two_finished_runs(tmp_path, learnable_dataset, store) -> None:
    for lr in (1e-3, 5e-3):
        _, _, rc = train(store, make_config("lora", training={"learning_rate": lr, "max_steps": 4}),
                         learnable_dataset)
        assert rc == 0
    app = LfTuiApp(runs_dir=store.root)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and
                       app.screen.query_one("#runs", DataTable).row_count == 2, what="runs listed")
        await pilot.press("space", "down", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="comparison")
        summary = app.screen.query_one("#compare-summary", DataTable)
        ids = {r.run_id for r in store.list()}
        assert {str(c.label) for c in summary.columns.values()} >= ids
        config = app.screen.query_one("#compare-config", DataTable)
        keys = [str(config.get_row_at(i)[0]) for i in range(config.row_count)]
        assert "training.learning_rate" in keys and "training.max_steps" not in keys
        assert len(app.screen.query_one("#compare-plot").series) == 2


async def test_a_run_started_elsewhere_appears_and_opens_while_running(tmp_path, learnable_dataset, store) -> None:
    run, proc = start_run(store, make_config("lora", training={"max_steps": 100000}), learnable_dataset)
    try:
        next(e for e in proc.events() if isinstance(e, Step))
        app = LfTuiApp(runs_dir=store.root)
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and
                           app.screen.query_one("#runs", DataTable).row_count == 1)
            table = app.screen.query_one("#runs", DataTable)
            await wait_for(pilot, lambda: "running" in str(table.get_row_at(0)[4]), what="running status")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="run view")
            screen = app.screen
            first = screen.model.loss.count
            await wait_for(pilot, lambda: screen.model.loss.count > first + 2, what="live steps after replay")
    finally:
        proc.cancel()
        list(proc.events())
        proc.wait(60)


async def test_starts_and_quits_with_empty_and_corrupt_run_stores(tmp_path) -> None:
    runs = tmp_path / "runs"
    for setup in ("empty", "corrupt"):
        if setup == "corrupt":
            (runs / "broken").mkdir(parents=True)
            (runs / "broken" / "events.jsonl").write_bytes(b'{"type": "step", "step": 1, "loss": \x00\xff')
            (runs / "half").mkdir()
            (runs / "half" / "meta.json").write_text("{not json")
            (runs / "stray.txt").write_text("not a run")
        app = LfTuiApp(runs_dir=runs)
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            await pilot.pause(0.3)
            table = app.screen.query_one("#runs", DataTable)
            assert table.row_count == (0 if setup == "empty" else 2)
            if setup == "corrupt":
                await pilot.press("enter")
                await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
                await pilot.pause(0.3)
            await pilot.press("ctrl+q")
        assert app.return_code in (0, None)


async def test_delete_asks_first_and_keeps_the_run_on_no(tmp_path) -> None:
    store_root = tmp_path / "runs"
    from engine.run_store import RunStore

    run = RunStore(store_root).create("lora", {"base_model": "builtin:tiny-llama"})
    (run.path / "summary.json").write_text('{"status": "completed"}')
    app = LfTuiApp(runs_dir=store_root)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and
                       app.screen.query_one("#runs", DataTable).row_count == 1)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="delete confirmation")
        await pilot.press("n")
        await pilot.pause(0.2)
        assert run.path.exists()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not run.path.exists(), what="deletion")


async def test_a_crashed_run_shows_as_crashed_with_its_curve(tmp_path) -> None:
    from engine.protocol import RunStarted as Started
    from engine.run_store import RunStore

    run = RunStore(tmp_path / "runs").create("lora", {"base_model": "builtin:tiny-llama"})
    (run.path / "engine.json").write_text('{"pid": 999999999, "create_time": 1.0}')  # an engine long gone
    lines = [Started(run_id=run.run_id, method="lora", total_steps=50).to_line()]
    lines += [Step(step=i, loss=3.0 / i, total_steps=50).to_line() for i in range(1, 8)]
    run.events_path.write_text("".join(lines))
    app = LfTuiApp(runs_dir=run.path.parent)
    async with app.run_test(size=(140, 45)) as pilot:
        app.open_run(run)
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.is_mounted and screen.model.loss.count == 7)
        await wait_for(pilot, lambda: "crashed" in str(screen.query_one("#run-title").render()), what="crashed")
        assert screen.model.loss.count == 7 and "step 7/50" in text_of(app, "#figures")
