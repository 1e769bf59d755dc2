"""The run view of a run that ended (failed, crashed) at 80x24, on runs made from the committed fixture: it says why
and what next, refuses c/k/e with the reason, offers r (resume), and its log re-wraps on resize."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Label, Static
from textual.widgets._footer import FooterKey

from lf_tui.app import LfTuiApp
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.run_screen import RunScreen
from lf_tui.widgets.dialogs import ConfirmScreen
from lf_tui.widgets.reflow_log import ReflowLog
from tests.ended_fixtures import DATA_ERROR, ended_run
from tests.tui_helpers import wait_for


def _text(app: LfTuiApp, selector: str) -> str:
    return " ".join(str(app.screen.query_one(selector, Static).render()).split())


def _footer(app: LfTuiApp) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


def _messages(app: LfTuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _open(pilot, app: LfTuiApp, run, status: str) -> RunScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
    app.open_run(run)
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and bool(app.screen.query("#summary"))
                   and f"Run {status}" in _text(app, "#summary"),
                   timeout=30, what=f"the {status} summary")
    await pilot.pause(0.3)
    assert isinstance(app.screen, RunScreen)
    return app.screen


async def test_a_failed_run_says_why_refuses_controls_and_resumes(tmp_path: Path) -> None:
    run = ended_run(tmp_path / "runs", "failed")
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    resumed: list[str] = []
    app.resume_run = lambda r: resumed.append(r.run_id)  # type: ignore[method-assign]  (the launch is the app's)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app, run, "failed")
        summary = _text(app, "#summary")
        assert summary.startswith(f"Run failed · data error: {DATA_ERROR['message']} hint: {DATA_ERROR['hint']} "
                                  "after the fix, r resumes it from its last checkpoint"), summary
        region = screen.query_one("#summary").region
        assert region.y >= 0 and region.bottom <= 23, region  # all of it on screen, above the footer
        footer = _footer(app)
        assert "Resume" in footer and "Back" in footer, footer
        assert not {"Cancel run", "Checkpoint now", "Stop after eval", "Back (run goes on)"} & set(footer), footer
        assert "ETA" not in _text(app, "#figures")
        for key in "kec":
            await pilot.press(key)
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert _messages(app) == ["the run has failed: nothing can save a checkpoint now",
                                  "the run has failed: there is no evaluation to stop after",
                                  "the run has failed: there is nothing to cancel"]
        assert not (run.path / "control.jsonl").exists()  # no request that nothing would answer
        await pilot.press("r")
        await wait_for(pilot, lambda: resumed == [run.run_id] and not isinstance(app.screen, RunScreen),
                       what="resume asked of the app")


async def test_a_crashed_run_is_not_running_and_its_log_reflows(tmp_path: Path) -> None:
    run = ended_run(tmp_path / "runs", "crashed")
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open(pilot, app, run, "crashed")
        assert "· crashed ·" in str(screen.query_one("#run-title", Label).render())
        assert _text(app, "#summary") == ("Run crashed · its engine died without a final event (see engine.log in the run "
                                          "folder) r resumes it from its last checkpoint")
        await pilot.press("k")
        await pilot.pause(0.2)
        assert _messages(app) == ["the run has crashed (its engine is gone): nothing can save a checkpoint now"]
        assert not (run.path / "control.jsonl").exists()
        log = screen.query_one("#log", ReflowLog)
        log.write("x" * 150)  # wider than 80 columns: wrapped at 118 now
        await pilot.pause(0.1)
        before = len(log.lines)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: log.scrollable_content_region.width <= 78, what="the narrower log")
        await pilot.pause(0.2)
        width = log.scrollable_content_region.width
        assert max(strip.cell_length for strip in log.lines) <= width, (width, [s.cell_length for s in log.lines])
        assert len(log.lines) > before  # the long lines wrapped again, onto more lines
