"""Resource gauges of a run (per GPU, or CPU and RAM): label, fill fraction and figures; widgets draw the bars."""

from __future__ import annotations

from dataclasses import dataclass

from engine.protocol import System


@dataclass(frozen=True)
class Gauge:
    """One gauge: `fraction` in [0, 1] fills the bar, `text` is the figure printed beside it."""

    label: str
    fraction: float
    text: str


def _fraction(used: float, total: float) -> float:
    return max(0.0, min(1.0, used / total)) if total else 0.0


def gauges(system: System | None) -> list[Gauge]:
    """Memory and utilisation per GPU, or the process's CPU and the machine's RAM where there is no GPU."""
    if system is None:
        return []
    out = []
    for i, g in enumerate(system.gpus):
        index = g.get("index", i)
        used, total = float(g.get("memory_used_mb", 0) or 0), float(g.get("memory_total_mb", 0) or 0)
        util = float(g.get("utilization", 0) or 0)
        out.append(Gauge(f"GPU{index} mem", _fraction(used, total), f"{used / 1024:.1f}/{total / 1024:.1f} GiB"))
        out.append(Gauge(f"GPU{index} util", _fraction(util, 100), f"{util:.0f}%"))
    if not system.gpus:
        total = system.ram_total_mb or 0
        out.append(Gauge("CPU", _fraction(system.cpu_percent, 100), f"{system.cpu_percent:.0f}%"))
        out.append(Gauge("RAM", _fraction(system.ram_used_mb, total),
                         f"{system.ram_used_mb / 1024:.1f}/{total / 1024:.1f} GiB (engine RSS {system.rss_mb / 1024:.2f} GiB)"))
    return out


def memory_lines(system: System | None) -> list[str]:
    """The gauges as one line per device, for a one-line live view."""
    if system is None:
        return ["waiting for system sample"]
    shown = {g.label: g for g in gauges(system)}
    if system.gpus:
        return [f"{label[:-4]} {g.text}  util {shown[label[:-4] + ' util'].text}"
                for label, g in shown.items() if label.endswith(" mem")]
    return [f"CPU {shown['CPU'].text}  RAM {shown['RAM'].text}"]
