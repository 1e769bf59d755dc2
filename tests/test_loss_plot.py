"""The run view's loss plot: EMA smoothing (debiased, cycled with `s`), a log scale (`l`), whole-step x ticks and
evaluations drawn as points; on a replayed fixture run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.run_store import RunDir
from lf_tui.app import LfTuiApp
from lf_tui.curve import SMOOTHING_STEPS, Curve, ema, next_smoothing, whole_ticks
from lf_tui.screens.run_screen import RunScreen
from lf_tui.widgets.plots import CurvePlot
from tests.test_snapshots import FIXTURE_RUNS
from tests.tui_helpers import wait_for


def test_ema_is_debiased_and_bounded_by_its_inputs() -> None:
    assert ema([4.0, 4.0, 4.0], 0.9) == pytest.approx([4.0, 4.0, 4.0])  # no pull towards 0 at the start
    smoothed = ema([1.0, 3.0], 0.5)
    assert smoothed == pytest.approx([1.0, (0.5 * 0.5 * 1 + 0.5 * 3) / 0.75])
    noisy = [5.0, 1.0, 5.0, 1.0, 5.0, 1.0]
    assert max(ema(noisy, 0.9)) - min(ema(noisy, 0.9)[1:]) < 4.0  # the spikes flatten
    assert ema(noisy, 0.0) == noisy
    with pytest.raises(ValueError):
        ema(noisy, 1.0)


def test_ticks_are_whole_round_steps_and_smoothing_cycles() -> None:
    assert whole_ticks(1, 4) == [1, 2, 3, 4]
    assert whole_ticks(1, 12) == [2, 4, 6, 8, 10, 12]
    assert whole_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert whole_ticks(1, 1) == [1]
    for lo, hi in ((1, 3.5), (0, 7), (3, 1000), (10, 123456)):
        ticks = whole_ticks(lo, hi)
        assert all(isinstance(t, int) for t in ticks) and 1 <= len(ticks) <= 6
        assert ticks[0] >= int(lo) and ticks[-1] <= hi + 1
    seen, weight = [], 0.0
    for _ in SMOOTHING_STEPS:
        weight = next_smoothing(weight)
        seen.append(weight)
    assert seen == [*SMOOTHING_STEPS[1:], 0.0]


async def test_run_view_keys_smooth_and_log_the_loss_plot(tmp_path: Path) -> None:
    run_path = tmp_path / "runs" / "20260101-120000-lora-aaaa"
    shutil.copytree(FIXTURE_RUNS / run_path.name, run_path)
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run(RunDir(run_path))
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.state.finished is not None,
                       what="replayed run")
        plot = app.screen.query_one("#loss-plot", CurvePlot)
        await wait_for(pilot, lambda: "waiting for data" not in plot.plt.build(), what="the loss drawn")
        loss: Curve = app.screen.state.loss
        assert len(loss) > 10 and len(app.screen.state.eval_loss) >= 1
        drawn = plot.plt.build()
        assert "●" in drawn  # the evaluation is a point, not a line
        await pilot.press("s")
        assert plot.smoothing == SMOOTHING_STEPS[1] and "smoothed 0.6" in plot.heading()
        smoothed_drawing = plot.plt.build()
        assert "loss (raw)" in smoothed_drawing and smoothed_drawing != drawn
        await pilot.press("l")
        assert plot.log_y and "log scale" in plot.heading() and "log scale" in plot.plt.build()
        await pilot.press("s", "s", "s")
        assert plot.smoothing == 0.0 and "smoothed" not in plot.heading()
        xs, _ = loss.points()
        labels = plot.plt.build()
        assert str(whole_ticks(xs[0], xs[-1])[-1]) in labels


async def test_a_replayed_runs_alerts_are_logged_not_announced(tmp_path: Path) -> None:
    run_path = tmp_path / "runs" / "20260101-120500-full_finetune-bbbb"
    shutil.copytree(FIXTURE_RUNS / run_path.name, run_path)
    app = LfTuiApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run(RunDir(run_path))
        screen = app.screen
        await wait_for(pilot, lambda: isinstance(screen, RunScreen) and screen.state.finished is not None
                       and screen._alerts_seen == len(screen.state.alerts), what="replayed run drawn")
        assert screen.state.alerts and "loss spiked" in screen.state.alerts[0].message  # the fixture's spikes
        assert any(m.startswith("alert: loss spiked") for _, m in screen.state.logs)
        assert not [n for n in app._notifications if n.title == "alert"]  # old news: no bell, no toast
