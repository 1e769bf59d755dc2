"""System sampling on a timer: per-GPU memory and utilisation from NVML, process CPU and RSS from psutil."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from engine.protocol import System


class SystemMonitor:
    """Samples every `interval_s` seconds in a thread and hands a System event to `emit`."""

    def __init__(self, emit: Callable[[System], None], interval_s: float, run_path: Path | None = None):
        """`run_path`: a multi-process run's folder; the RSS then adds up this machine's ranks (their records)."""
        self.emit = emit
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.run_path = run_path
        self._ranks: dict[int, psutil.Process] = {}
        self.process.cpu_percent(None)
        self.peak_rss_mb = 0.0
        self.peak_gpu_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.nvml_note = self._init_nvml()

    def _init_nvml(self) -> str:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            return f"NVML: {pynvml.nvmlDeviceGetCount()} GPU(s)"
        except Exception as exc:
            self._nvml = None
            return f"NVML unavailable ({type(exc).__name__}): reporting CPU and RAM only"

    def gpus(self) -> list[dict[str, Any]]:
        if self._nvml is None:
            return []
        nv, out = self._nvml, []
        try:
            for i in visible_indices(nv.nvmlDeviceGetCount()):
                handle = nv.nvmlDeviceGetHandleByIndex(i)
                mem, util = nv.nvmlDeviceGetMemoryInfo(handle), nv.nvmlDeviceGetUtilizationRates(handle)
                name = nv.nvmlDeviceGetName(handle)
                out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                            "memory_used_mb": mem.used / 2**20, "memory_total_mb": mem.total / 2**20,
                            "utilization": float(util.gpu)})
                self.peak_gpu_mb = max(self.peak_gpu_mb, mem.used / 2**20)
        except Exception:
            return out
        return out

    def _other_ranks_rss(self) -> float:
        """The RSS of this machine's other ranks (rank records name their pids)."""
        if self.run_path is None:
            return 0.0
        from engine.distributed import read_rank_records

        total = 0.0
        for rank, record in read_rank_records(self.run_path).items():
            pid = record.get("pid")
            if rank == 0 or record.get("status") != "running" or not isinstance(pid, int):
                continue
            try:
                proc = self._ranks.get(rank)
                if proc is None or proc.pid != pid:
                    proc = self._ranks[rank] = psutil.Process(pid)
                total += proc.memory_info().rss / 2**20
            except psutil.Error:
                continue
        return total

    def sample(self) -> System:
        rss = self.process.memory_info().rss / 2**20 + self._other_ranks_rss()
        self.peak_rss_mb = max(self.peak_rss_mb, rss)
        vm = psutil.virtual_memory()
        return System(gpus=self.gpus(), cpu_percent=self.process.cpu_percent(None), rss_mb=round(rss, 1),
                      ram_used_mb=round((vm.total - vm.available) / 2**20, 1), ram_total_mb=round(vm.total / 2**20, 1))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.emit(self.sample())
            except Exception:
                pass

    def start(self) -> None:
        self.emit(self.sample())
        self._thread = threading.Thread(target=self._loop, name="system-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        self.sample()


def visible_indices(count: int) -> list[int]:
    """The GPUs the run may use: CUDA_VISIBLE_DEVICES' indices when it lists them, else every one NVML counts."""
    import os

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not visible.strip():
        return list(range(count))
    try:
        indices = [int(v) for v in visible.split(",") if v.strip()]
    except ValueError:  # GPU UUIDs: not mapped to NVML indices here
        return list(range(count))
    return [i for i in indices if 0 <= i < count]
