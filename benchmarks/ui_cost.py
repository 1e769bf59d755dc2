"""The UI's cost: event ingest into the run view's model and plot, redraw time, and start-up ratios."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ingest(n_events: int) -> dict[str, float]:
    """Parse and ingest `n_events` recorded step lines; memory is traced, redraw timed at the end."""
    import plotext as plt

    from engine.protocol import EventReader, RunStarted, Step
    from lf_tui.run_state import RunState

    lines = [RunStarted(run_id="bench", total_steps=n_events).to_line().encode()]
    template = Step(step=0, epoch=0.0, loss=2.0, learning_rate=1e-4, grad_norm=1.0, tokens_per_s=1000.0,
                    elapsed_s=0.0, eta_s=10.0, total_steps=n_events).to_line()
    head, tail = template.split('"step":0', 1)
    lines += [(head + f'"step":{i}' + tail.replace('"loss":2.0', f'"loss":{2.0 + 1.0 / (i + 1):.6f}')).encode()
              for i in range(1, n_events + 1)]
    model, reader = RunState(), EventReader()
    start = time.perf_counter()
    for line in lines:  # timed without tracing
        event = reader.feed(line)
        if event is not None:
            model.ingest(event)
    seconds = time.perf_counter() - start
    traced, reader = RunState(), EventReader()
    tracemalloc.start()  # memory of the model while it ingests (tracing slows it, so a second pass)
    half_peak = 0.0
    for i, line in enumerate(lines):
        event = reader.feed(line)
        if event is not None:
            traced.ingest(event)
        if i == len(lines) // 2:
            half_peak = tracemalloc.get_traced_memory()[1] / 2**20
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    redraws = []
    for _ in range(5):
        t = time.perf_counter()
        xs, ys = model.loss.points()
        plt.clear_figure()
        plt.plotsize(120, 30)
        plt.plot(xs, ys, marker="braille")
        plt.build()
        redraws.append(time.perf_counter() - t)
    return {"events": n_events, "events_per_s": n_events / seconds, "model_peak_mb_half": half_peak,
            "model_peak_mb": peak, "curve_points": len(model.loss), "redraw_ms": 1000 * statistics.median(redraws)}


def _median_time(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


FIRST_FRAME = """
from lf_tui.app import LfTuiApp
class Once(LfTuiApp):
    def on_mount(self):
        super().on_mount()
        self.call_after_refresh(self.exit)
Once(runs_dir="/nonexistent-bench-runs").run(headless=True)
import sys
print("torch" in sys.modules)
"""


def startup(repeats: int) -> dict[str, float]:
    py = sys.executable
    base = _median_time([py, "-c", "pass"], repeats)
    validate = _median_time([py, "-m", "lf_tui", "validate-config", "-c", "methods/lora/examples/basic.json"], repeats)
    frame = _median_time([py, "-c", FIRST_FRAME], repeats)
    importtime = subprocess.run([py, "-X", "importtime", "-m", "lf_tui", "validate-config", "-c",
                                 "methods/lora/examples/basic.json"], cwd=ROOT, capture_output=True, text=True)
    torch_in_validate = any(line.rstrip().endswith(" torch") for line in importtime.stderr.splitlines())
    torch_in_tui = subprocess.run([py, "-c", FIRST_FRAME], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"python_s": base, "validate_s": validate, "first_frame_s": frame,
            "validate_config_vs_python": validate / base, "tui_first_frame_vs_python": frame / base,
            "torch_imported_by_validate": torch_in_validate, "torch_imported_by_tui": torch_in_tui.endswith("True")}
