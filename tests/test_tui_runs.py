"""The run view and the run history, driven as a user would: start, watch, cancel, compare, survive junk."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Label, Static

from engine.protocol import Step
from engine.run_store import RunDir, RunStore
from lf_tui.app import LfTuiApp
from lf_tui.screens.compare_screen import CompareScreen
from lf_tui.screens.run_screen import RunScreen
from lf_tui.screens.runs_screen import RunsScreen
from lf_tui.widgets.dialogs import ConfirmScreen
from tests.conftest import make_config, start_run, train
from tests.tui_helpers import start_from_editor, wait_for


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_start_watch_and_cancel_a_run(tmp_path, learnable_dataset) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await start_from_editor(pilot, app, {"training": {"max_steps": 100000}}, str(learnable_dataset))
        screen = app.screen
        await wait_for(pilot, lambda: screen.state.loss.count >= 3 and "tokens/s" in text_of(app, "#figures"),
                       what="steps to arrive")
        assert len(screen.state.loss) >= 3 and "tokens/s" in text_of(app, "#figures")
        await wait_for(pilot, lambda: "CPU" in text_of(app, "#gauges") or "GPU" in text_of(app, "#gauges"))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="cancel confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.state.finished is not None, timeout=120, what="run to stop")
        assert screen.state.finished.status == "cancelled"
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
        await wait_for(pilot, lambda: len(app.screen.records) == 2, what="runs replayed in the worker")
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
            first = screen.state.loss.count
            await wait_for(pilot, lambda: screen.state.loss.count > first + 2, what="live steps after replay")
    finally:
        proc.cancel()
        list(proc.events())
        proc.wait(60)


def _label(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Label).render())


def _status_cells(table: DataTable) -> dict[str, str]:
    return {str(key.value): str(table.get_cell(key, "status")) for key in table.rows}


async def _open_runs(pilot, app) -> DataTable:
    """F2, then wait until the first scan of the store has been shown (the title names the counts)."""
    await pilot.press("f2")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and "shown" in _label(app, "#runs-title"),
                   what="the runs list")
    return app.screen.query_one("#runs", DataTable)


async def test_starts_browses_and_quits_with_an_empty_store(tmp_path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "never-created")
    async with app.run_test(size=(140, 45)) as pilot:
        table = await _open_runs(pilot, app)
        assert table.row_count == 0 and "0/0 shown" in _label(app, "#runs-title")
        await pilot.press("enter", "space", "c", "d", "f5")  # nothing to open, mark, compare or delete
        await wait_for(pilot, lambda: any("mark two or more" in str(n.message) for n in app._notifications),
                       what="the compare hint")
        assert isinstance(app.screen, RunsScreen) and table.row_count == 0
        assert not (tmp_path / "never-created").exists()  # looking never creates the store
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, what="quit")
    assert app.return_code == 0


async def test_an_empty_store_says_there_are_no_runs(tmp_path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(140, 45)) as pilot:
        await _open_runs(pilot, app)
        shown = " ".join(str(w.render()) for w in app.screen.query(Static) if w.display)
        assert "no runs" in shown.lower(), shown


def _write_run(store, name: str, lines: list[str], summary: dict | None) -> None:
    """A run folder as the engine leaves it: real meta/config from the store, events in the real encoding."""
    run = store.create("lora", {"base_model": "builtin:tiny-llama", "method_name": "lora"})
    run.path.rename(store.root / name)
    run = RunDir(store.root / name)
    run.file("engine.json").write_text('{"pid": 999999999, "create_time": 1.0, "started": 1.0}')  # long gone
    run.events_path.write_text("".join(lines))
    if summary is not None:
        run.file("summary.json").write_text(json.dumps(summary))


def _damaged_store(root):
    """One good run, one whose engine died mid-line, one of garbage, an empty folder and a stray file."""
    from engine.protocol import Finished as Done
    from engine.protocol import RunStarted as Started
    from engine.run_store import RunStore

    store = RunStore(root)
    steps = [Step(step=i, loss=3.0 / i, total_steps=3).to_line() for i in (1, 2, 3)]
    started = Started(run_id="good", method="lora", base_model="builtin:tiny-llama", total_steps=3).to_line()
    _write_run(store, "good", [started, *steps, Done(status="completed").to_line()],
               {"status": "completed", "final_loss": 1.0, "training_time_s": 5.0})
    _write_run(store, "truncated", [started, *steps[:2], steps[2][:25]], None)
    (store.root / "garbage").mkdir()
    (store.root / "garbage" / "meta.json").write_text("{not json")
    (store.root / "garbage" / "events.jsonl").write_bytes(b'{"type": "step", "step": 1, "loss": \x00\xff\n\x00\x01\n')
    (store.root / "empty").mkdir()
    (store.root / "stray.txt").write_text("not a run")
    return store


async def test_good_truncated_garbage_and_empty_runs_are_listed_with_status_and_problems(tmp_path) -> None:
    store = _damaged_store(tmp_path / "runs")
    app = LfTuiApp(runs_dir=store.root)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await _open_runs(pilot, app)
        await wait_for(pilot, lambda: table.row_count == 4, what="four rows")
        assert _status_cells(table) == {"good": "completed", "truncated": "crashed ⚠", "garbage": "crashed ⚠",
                                        "empty": "corrupt ⚠"}
        assert str(table.get_cell("good", "steps")) == "3/3" and str(table.get_cell("truncated", "steps")) == "2/3"
        # newest first, then the folders without a date; the panel names the first three problems
        assert [str(k.value) for k in table.rows] == ["truncated", "good", "garbage", "empty"]
        assert _label(app, "#runs-problems").splitlines()[:3] == [
            "truncated: 1 unreadable event line(s) skipped", "garbage: meta.json missing or corrupt",
            "garbage: 2 unreadable event line(s) skipped"]
        assert _label(app, "#runs-problems").splitlines()[3].startswith("… and 1 more problem(s)")
        await pilot.press("slash", *"corrupt", "enter")
        await wait_for(pilot, lambda: table.row_count == 1, what="the filter")
        assert _status_cells(table) == {"empty": "corrupt ⚠"}
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, what="quit")
    assert app.return_code == 0


async def test_a_garbage_run_opens_as_crashed(tmp_path) -> None:
    store = _damaged_store(tmp_path / "runs")
    app = LfTuiApp(runs_dir=store.root)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await _open_runs(pilot, app)
        await wait_for(pilot, lambda: table.row_count == 4, what="four rows")
        table.move_cursor(row=table.get_row_index("garbage"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the garbage run's view")
        screen = app.screen
        assert screen.run.run_id == "garbage"
        await wait_for(pilot, lambda: screen.state.engine_gone, what="the reader to give up on the dead run")
        await wait_for(pilot, lambda: screen._drawn_version == screen.state.version, what="a redraw")
        assert screen.state.loss.count == 0
        assert "crashed" in _label(app, "#run-title"), _label(app, "#run-title")


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
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="the dialog to close")
        await pilot.pause()  # the dialog's answer has been handled
        assert run.path.exists() and app.screen.query_one("#runs", DataTable).row_count == 1
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
        await wait_for(pilot, lambda: screen.is_mounted and screen.state.loss.count == 7)
        await wait_for(pilot, lambda: "crashed" in str(screen.query_one("#run-title").render()), what="crashed")
        assert screen.state.loss.count == 7 and "step 7/50" in text_of(app, "#figures")


async def test_ctrl_r_on_an_unwritable_store_says_why_and_keeps_the_editor(tmp_path, monkeypatch) -> None:
    """A runs folder that cannot be made (under a regular file), then an engine that cannot be started: each Ctrl+R
    is one sentence in a notification; the app, the editor and its modified text stay."""
    import errno

    from textual.widgets import TextArea

    import lf_tui.app as app_module
    from lf_tui.screens.editor_screen import EditorScreen
    from lf_tui.screens.methods_screen import MethodsScreen

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    app = LfTuiApp(runs_dir=blocker / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        editor, area = app.screen, app.screen.query_one("#config", TextArea)
        area.load_text(area.text.replace('"max_steps": -1', '"max_steps": 3'))
        modified = area.text
        await pilot.press("ctrl+r")
        notes = lambda: [str(n.message) for n in app._notifications]  # noqa: E731
        await wait_for(pilot, lambda: any(str(blocker) in n for n in notes()), what="the store's reason")
        reason = next(n for n in notes() if str(blocker) in n)
        assert "--runs-dir" in reason and "\n" not in reason, reason
        assert app.is_running and app.screen is editor and area.text == modified and editor.dirty

        app.store = RunStore(tmp_path / "runs")  # a writable store, but no engine can be started

        def no_engine(run, **_):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(app_module, "launch", no_engine)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("cannot start the engine" in n for n in notes()), what="launch failure")
        assert "No space left on device" in notes()[-1]
        assert app.is_running and app.screen is editor and area.text == modified


async def test_s_reverses_the_order_and_c_compares_only_the_marked_runs_shown(tmp_path) -> None:
    import shutil

    from textual.widgets import Input

    from tests.test_snapshots import FIXTURE_RUNS

    shutil.copytree(FIXTURE_RUNS, tmp_path / "runs")
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.shown_ids) == 2,
                       what="runs listed")
        screen = app.screen
        first = list(screen.shown_ids)
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.shown_ids == first[::-1], what="reversed")
        assert "↑" in str(screen.query_one("#runs-title", Label).render())
        await pilot.press("s")  # a second press restores the order
        await wait_for(pilot, lambda: screen.shown_ids == first, what="restored")
        await pilot.press("space", "down", "space")  # both marked
        await wait_for(pilot, lambda: len(screen.marked) == 2)
        hidden = first[1]
        screen.query_one("#filter", Input).value = first[0]  # the filter hides the second
        await wait_for(pilot, lambda: screen.shown_ids == [first[0]], what="filtered")
        assert "1 hidden by the filter" in str(screen.query_one("#runs-title", Label).render())
        await pilot.press("c")  # the table has the focus
        await wait_for(pilot, lambda: any("hidden by the filter" in str(n.message) for n in app._notifications),
                       what="refusal")
        assert app.screen is screen and hidden in screen.marked


async def test_the_runs_list_says_why_a_run_ended_where_the_width_allows(tmp_path) -> None:
    from tests.ended_fixtures import DATA_ERROR, ended_run

    ended_run(tmp_path / "runs", "failed")
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.table.row_count == 1)
        table = app.screen.table
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[-1] == "reason"
        cell = str(table.get_row_at(0)[-1])
        assert "data" in cell and DATA_ERROR["message"][:30] in cell, cell
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "reason" not in [str(c.label) for c in table.columns.values()],
                       what="the compact columns at 80 columns (the run view says why)")
