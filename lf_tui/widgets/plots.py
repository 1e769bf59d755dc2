"""Terminal line plots (plotext) that redraw from bounded curves."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from lf_tui.curve import Curve


class CurvePlot(PlotextPlot):
    """One or more curves on shared axes; rescales to whatever the curves hold."""

    def __init__(self, title: str, *, id: str | None = None):
        super().__init__(id=id)
        self.title = title
        self.series: list[tuple[str, Curve]] = []

    def set_series(self, series: list[tuple[str, Curve]]) -> None:
        self.series = series
        self.redraw()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        drawn = False
        for label, curve in self.series:
            xs, ys = curve.points()
            if xs:
                plt.plot(xs, ys, label=label if len(self.series) > 1 else None, marker="braille")
                drawn = True
        if not drawn:
            plt.title(f"{self.title} (waiting for data)")
        self.refresh()
