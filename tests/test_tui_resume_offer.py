"""The run view offers `r` (resume) only where it can work: an ended run with a complete checkpoint."""

from __future__ import annotations

from lf_tui.app import LfTuiApp
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.run_screen import RunScreen
from tests.ended_fixtures import ended_run
from tests.tui_helpers import wait_for


def _footer_actions(app) -> set[str]:
    from textual.widgets._footer import FooterKey

    return {key.action for key in app.screen.query(FooterKey)}


async def test_resume_is_offered_with_a_checkpoint_and_not_without(tmp_path) -> None:
    with_checkpoint = ended_run(tmp_path / "runs", "failed", name="20260101-110000-lora-with")
    without = ended_run(tmp_path / "runs", "failed", checkpoint=False, name="20260101-100000-lora-none")
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        for run, offered in ((with_checkpoint, True), (without, False)):
            app.open_run(run)
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.has_class("ended"),
                           what="the ended run's view")
            await pilot.pause(0.3)
            assert ("resume" in _footer_actions(app)) is offered, (run.run_id, _footer_actions(app))
            summary = str(app.screen.query_one("#summary").render())
            if not offered:
                assert "has no complete checkpoint to resume from" in summary
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, RunScreen), what="back")
