"""The Playground as a user drives it: runs marked in the Runs screen, `g`, a prompt, answers streamed side by side
from one real serving process (the built-in model and a locally built GPT-2, grouped by base), asked again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList

from engine.run_store import RunDir, RunStore
from lf_tui.app import LfTuiApp
from lf_tui.screens.playground_screen import AnswerCard, PlaygroundScreen
from lf_tui.screens.runs_screen import RunsScreen
from tests.conftest import LEARNABLE, make_config, train
from tests.tiny_models import save_tiny_model
from tests.tui_helpers import wait_for

PROMPT = "Say the greeting."
TRAINING = {"max_steps": 4}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, RunDir]]:
    """Two LoRA runs on the built-in model (different learning rates) and one on a locally built GPT-2."""
    root = tmp_path_factory.mktemp("playground")
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    store = RunStore(root / "runs")
    gpt2 = save_tiny_model(root / "gpt2", "gpt2")
    made = {}
    for name, lr, extra in (("a", 1e-2, {}), ("b", 5e-2, {}),
                            ("gpt2", 3e-2, {"base_model": str(gpt2), "hardware": {"mixed_precision": "no"}})):
        cfg = make_config("lora", training={**TRAINING, "learning_rate": lr}, **extra)
        run, _, code = train(store, cfg, dataset)
        assert code == 0
        made[name] = run
    return root / "runs", made


def cards(app: LfTuiApp) -> dict[str, AnswerCard]:
    return {c.answer.key: c for c in app.screen.query(AnswerCard)}


async def test_marked_runs_answer_side_by_side_with_their_bases(runs: tuple[Path, dict[str, RunDir]]) -> None:
    from engine.generate import generate

    runs_dir, made = runs
    expected = {r.run_id: generate(r, PROMPT)["completion"] for r in made.values()}
    expected["base@builtin:tiny-llama"] = generate(made["a"], PROMPT, compare_base=True)["base_completion"]
    expected[f"base@{made['gpt2'].path.parent.parent / 'gpt2'}"] = generate(
        made["gpt2"], PROMPT, compare_base=True)["base_completion"]
    app = LfTuiApp(runs_dir=runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and app.screen.query_one("#runs", DataTable).row_count == 3, what="runs listed")
        await pilot.press("space", "down", "space", "down", "space", "g")  # mark all three, open the playground
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen) and app.screen.state.ready,
                       what="serving engine ready")
        screen = app.screen
        assert isinstance(screen, PlaygroundScreen)
        assert sorted(screen.state.chosen) == sorted(r.run_id for r in made.values())
        assert "3 runs + base on 2 base models" in str(screen.query_one("#pg-title").render())
        await pilot.click("#pg-prompt")
        await pilot.press(*PROMPT, "enter")
        await wait_for(pilot, lambda: len(cards(app)) == 5 and all(c.answer.done for c in cards(app).values()),
                       timeout=120, what="five answers")
        shown = cards(app)
        assert {k: c.answer.text for k, c in shown.items()} == expected  # what each run alone would say
        assert len({shown[made["a"].run_id].answer.text, shown[made["b"].run_id].answer.text,
                    shown["base@builtin:tiny-llama"].answer.text}) > 1
        for card in shown.values():
            timing = str(card.query_one(".card-timing").render())
            assert "first token" in timing and "tok/s" in timing and card.answer.first_token_s
        headings = [str(label.render()) for label in screen.query(".pg-group")]
        assert len(headings) == 2 and all("a base of its own" in h for h in headings)
        assert any("builtin:tiny-llama · 2 runs" in h for h in headings)
        assert screen.state.loaded and max(e["bases_loaded"] for e in screen.state.loaded.values()) == 2

        # deselect a run (space in the list) and ask again from the history: the same answers, one fewer card
        await pilot.press("f7")
        listing = screen.targets_list
        listing.highlighted = [listing.get_option_at_index(i).value for i in range(listing.option_count)].index(
            made["b"].run_id)
        await pilot.press("space")
        await wait_for(pilot, lambda: made["b"].run_id not in screen.state.chosen, what="run b deselected")
        screen.query_one("#pg-prompt", Input).value = ""
        await pilot.press("f8")
        history = screen.query_one("#pg-history", OptionList)
        assert history.option_count == 1
        history.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(cards(app)) == 4 and all(c.answer.done for c in cards(app).values()),
                       timeout=60, what="four answers")
        again = {k: c.answer.text for k, c in cards(app).items()}
        assert again == {k: v for k, v in expected.items() if k != made["b"].run_id}
        assert screen.query_one("#pg-prompt", Input).value == PROMPT
        client = screen.client
        await pilot.press("escape")
        await wait_for(pilot, lambda: client is not None and not client.running, what="serving engine stopped")


async def test_bad_settings_and_no_run_chosen_are_said_not_asked(runs: tuple[Path, dict[str, RunDir]]) -> None:
    runs_dir, made = runs
    app = LfTuiApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaygroundScreen) and app.screen.state.ready,
                       what="serving engine ready")
        screen = app.screen
        assert isinstance(screen, PlaygroundScreen)
        assert "no run chosen" in str(screen.query_one("#pg-title").render())
        screen.query_one("#pg-prompt", Input).value = PROMPT
        await pilot.press("enter")
        assert not screen.state.busy and not cards(app)
        assert any("choose" in n.message for n in app._notifications)
        screen.state.choose([made["a"].run_id])
        screen.query_one("#pg-settings", Input).value = "tokens=lots"
        await pilot.press("ctrl+g")
        assert not screen.state.busy and not cards(app)
        assert any("tokens must be a whole number" in n.message for n in app._notifications)
        screen.query_one("#pg-settings", Input).value = "tokens=4 seed=3"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: len(cards(app)) == 2 and all(c.answer.done for c in cards(app).values()),
                       timeout=60, what="two answers")
        assert all(c.answer.new_tokens <= 4 for c in cards(app).values())
        # every card stays on screen at 80x24: two cards side by side in the answers pane
        regions = [c.region for c in cards(app).values()]
        assert all(r.right <= 80 and r.width >= 20 for r in regions) and regions[0].y == regions[1].y
