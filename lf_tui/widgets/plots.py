"""Terminal line plots (plotext) that redraw from bounded curves: smoothing, a log scale, whole-step axes."""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

from lf_tui.curve import Curve, ema, whole_ticks

LINE, POINTS = "line", "points"  # how a series is drawn: a line (training loss) or points (evaluations)


def log_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Evenly spaced positions on a log10 axis from `low` to `high` (one when the range is a point)."""
    if high - low < 1e-12:
        return [low]
    return [low + (high - low) * i / (count - 1) for i in range(count)]


class CurvePlot(PlotextPlot):
    """One or more curves on shared axes; rescales to whatever the curves hold. `smoothing` (an EMA weight) draws
    each line smoothed over its raw values; `log_y` a logarithmic y axis; x ticks are whole steps."""

    def __init__(self, title: str, *, id: str | None = None):
        super().__init__(id=id)
        self.title = title
        self.series: list[tuple[str, Curve, str]] = []
        self.smoothing = 0.0
        self.log_y = False

    def set_series(self, series: list[tuple[str, Curve] | tuple[str, Curve, str]]) -> None:
        self.series = [(s[0], s[1], s[2] if len(s) > 2 else LINE) for s in series]
        self.redraw()

    def heading(self) -> str:
        """The title with what is applied; shortened to fit a narrow plot (plotext drops a title too long)."""
        extras = [f"smoothed {self.smoothing:g}" if self.smoothing else "", "log scale" if self.log_y else ""]
        full = " · ".join([self.title, *filter(None, extras)])
        width = self.size.width or 200
        if len(full) <= width - 4:
            return full
        short = [f"ema {self.smoothing:g}" if self.smoothing else "", "log" if self.log_y else ""]
        return " · ".join([self.title.split()[-1], *filter(None, short)])[: max(width - 4, 8)]

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.heading())
        labelled = len(self.series) > 1 or self.smoothing > 0
        lo, hi = math.inf, -math.inf
        low_y, high_y = math.inf, -math.inf
        for label, curve, kind in self.series:
            xs, ys = curve.points()
            if self.log_y:  # plotted as log10(y) with the ticks labelled in y (plotext's own log scale is fragile)
                xs, ys = [x for x, y in zip(xs, ys) if y > 0], [math.log10(y) for y in ys if y > 0]
            if not xs:
                continue
            lo, hi = min(lo, xs[0]), max(hi, xs[-1])
            low_y, high_y = min(low_y, min(ys)), max(high_y, max(ys))
            if kind == POINTS:
                plt.scatter(xs, ys, label=label if labelled else None, marker="●")
            elif self.smoothing > 0:
                plt.plot(xs, ys, label=f"{label} (raw)", marker="braille", color="gray")
                plt.plot(xs, ema(ys, self.smoothing), label=label, marker="braille")
            else:
                plt.plot(xs, ys, label=label if labelled else None, marker="braille")
        if lo > hi:
            plt.title(f"{self.title} (waiting for data)")
        else:
            plt.xticks([float(t) for t in whole_ticks(lo, hi)], [str(t) for t in whole_ticks(lo, hi)])
            if self.log_y:
                ticks = log_ticks(low_y, high_y)
                plt.yticks(ticks, [f"{10 ** t:.3g}" for t in ticks])
        self.refresh()
