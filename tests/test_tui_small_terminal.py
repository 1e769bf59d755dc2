"""At 80x24 (many SSH terminals) the run view keeps its title, figures, plots and summary on screen."""

from __future__ import annotations

from textual.widgets import Label, Static

from engine.run_store import RunDir
from lf_tui.app import LfTuiApp
from lf_tui.screens.methods_screen import MethodsScreen
from lf_tui.screens.run_screen import RunScreen
from tests.conftest import make_config, train
from tests.tui_helpers import wait_for


def _visible(app, selector: str) -> bool:
    region = app.screen.query_one(selector).region
    return region.height > 0 and region.y >= 0 and region.bottom <= app.size.height - 1  # above the footer


async def test_finished_run_view_fits_80x24(store, learnable_dataset) -> None:
    run, _, rc = train(store, make_config("lora", training={"max_steps": 3}), learnable_dataset)
    assert rc == 0
    app = LfTuiApp(runs_dir=store.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen))
        app.open_run(RunDir(run.path))
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and bool(app.screen.query("#summary")))
        await wait_for(pilot, lambda: "Run completed" in str(app.screen.query_one("#summary", Static).render()),
                       what="summary")
        await pilot.pause(0.3)
        title = str(app.screen.query_one("#run-title", Label).render())
        assert run.run_id in title and "completed" in title
        for selector in ("#run-title", "#figures", "#plots", "#summary", "#log"):
            assert _visible(app, selector), (selector, app.screen.query_one(selector).region)
        assert app.screen.query_one("#loss-plot").region.height >= 5
