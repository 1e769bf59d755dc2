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


def _footer_keys(app, whole: bool = True) -> dict[str, str]:
    """The footer's keys (display -> description), each asserted whole on screen (none cut by the edge)."""
    from textual.widgets._footer import FooterKey

    keys = list(app.screen.query(FooterKey))
    for key in keys if whole else ():
        assert key.region.width == key.outer_size.width > 0 and key.region.right <= app.size.width, (key.key_display,
                                                                                             key.region)
    return {key.key_display: key.description for key in keys}


def _help_text(app) -> str:
    return str(app.screen.query_one("#help-body", Static).render())


async def test_every_screen_fits_its_footer_and_lists_all_its_keys_at_80x24(tmp_path, monkeypatch) -> None:
    """At 80 columns each footer holds only whole keys, `?` always among them; `?` lists every key of the screen
    (its BINDINGS, shown or not) and the global ones; in a text field `?` is a character."""
    from textual.widgets import Input, TextArea

    from lf_tui.screens import playground_screen
    from lf_tui.screens.editor_screen import EditorScreen
    from lf_tui.screens.help_screen import HelpScreen
    from lf_tui.screens.playground_screen import PlaygroundScreen
    from lf_tui.screens.recommend_screen import RecommendScreen
    from lf_tui.screens.runs_screen import RunsScreen
    from tests.test_snapshots_playground import ReplayedServing

    monkeypatch.setattr(playground_screen, "SERVE_CLIENT", [ReplayedServing])
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        async def check(screen_type, *wanted: str) -> str:
            await wait_for(pilot, lambda: isinstance(app.screen, screen_type) and "?" in _footer_keys(app),
                           what=f"{screen_type.__name__} footer")
            screen = app.screen
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help screen")
            text = _help_text(app)
            for _, binding in screen._bindings:
                assert not binding.description or binding.description in text, (binding.description, text)
            for key in ("f1", "f2", "f3", "f6", "^q", "?", *wanted):
                assert f"{key} " in text or f" {key}" in text, (key, text)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, what="help closed")
            return text

        await check(MethodsScreen, "⏎")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        area = app.screen.query_one("#config", TextArea)
        before = area.text
        assert "tab" in _footer_keys(app) and app.focused is area
        await pilot.press("tab")  # leaves the text untouched
        await wait_for(pilot, lambda: app.focused is not area, what="focus out of the text")
        assert area.text == before and isinstance(app.focused, Input)  # the dataset field: ? is a character there
        await pilot.press("f4")  # the issues list
        text = await check(EditorScreen, "f8", "^u", "^r / f5")
        assert text.index("Next pane") < text.index("Everywhere") < text.index("Focus Previous")  # whose key
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen), what="back at the methods")
        await pilot.press("f2")
        await check(RunsScreen, "s", "o", "d", "r")
        await pilot.press("f3")
        await check(RecommendScreen)
        status = app.screen.query_one("#recommend-status", Static)
        await wait_for(pilot, lambda: " shown" in str(status.render()), what="how many are shown")
        assert f"all {len(app.screen.found)} shown" in str(status.render())
        await pilot.press("f1", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen) and isinstance(app.focused, TextArea))
        await pilot.press("f6")  # global, even over the text's own F6
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen) and "?" in _footer_keys(app))
        assert isinstance(app.focused, Input)
        await pilot.press("question_mark")  # the prompt takes it as text
        await wait_for(pilot, lambda: app.focused.value == "?", what="? typed into the prompt")
        assert isinstance(app.screen, PlaygroundScreen)
        await pilot.press("f7")
        await check(PlaygroundScreen, "f9")


async def test_the_footer_refits_when_the_terminal_narrows(tmp_path) -> None:
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MethodsScreen) and "f6" in _footer_keys(app),
                       what="a wide footer with the global keys")
        wide = len(_footer_keys(app))
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: app.size.width == 80 and "f6" not in _footer_keys(app, whole=False),
                       what="refit")
        narrow = _footer_keys(app)  # each key whole within 80 columns (asserted inside)
        assert "?" in narrow and "⏎" in narrow and len(narrow) < wide
