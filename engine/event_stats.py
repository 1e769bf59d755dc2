"""A run's figures from its events.jsonl, read incrementally: a refresh parses only what was appended."""

from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from engine.protocol import Event, EventReader, RunStarted, Step, UnsupportedProtocol


@dataclass
class EventStats:
    """What listings need from a stream, accumulated event by event."""

    steps: int = 0
    total_steps: int = 0
    final_loss: float | None = None
    best_loss: float | None = None
    elapsed_s: float | None = None
    method: str = ""
    base_model: str = ""
    terminal: Event | None = None
    segments: int = 0
    skipped: int = 0
    problem: str = ""
    partial_tail: bool = False
    position: int = 0
    device: tuple[int, int] = (0, 0)
    reader: EventReader = field(default_factory=EventReader, repr=False)

    def feed(self, event: Event) -> None:
        if isinstance(event, Step):
            self.steps, self.final_loss, self.total_steps = event.step, event.loss, event.total_steps
            self.best_loss = event.loss if self.best_loss is None else min(self.best_loss, event.loss)
            self.elapsed_s = event.elapsed_s
        elif isinstance(event, RunStarted):  # also the start of a resumed segment: the run is open again
            self.method, self.base_model, self.total_steps = event.method, event.base_model, event.total_steps
            self.terminal = None
            self.segments += 1
        elif event.type in ("finished", "error"):
            self.terminal = event


_CACHE: dict[str, EventStats] = {}
_LOCK = threading.Lock()


def scan(path: Path) -> EventStats | None:
    """Stats of an events file (None when it does not exist); appended bytes only since the last call."""
    key = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    with _LOCK:
        cached = _CACHE.get(key)
    stats = copy.copy(cached) if cached is not None else None
    if stats is None or stats.device != (st.st_dev, st.st_ino) or st.st_size < stats.position:
        stats = EventStats(device=(st.st_dev, st.st_ino))  # new or rewritten file: start over
    else:
        stats.reader = copy.copy(stats.reader)
    with open(path, "rb") as fh:
        fh.seek(stats.position)
        chunk = fh.read()
    end = chunk.rfind(b"\n") + 1
    try:
        for line in chunk[:end].split(b"\n"):
            event = stats.reader.feed(line)
            if event is not None:
                stats.feed(event)
    except UnsupportedProtocol as exc:
        stats.problem = str(exc)
    stats.position += end
    stats.skipped = stats.reader.skipped
    stats.partial_tail = bool(chunk[end:].strip())
    with _LOCK:
        _CACHE[key] = stats
    return stats
