"""Following a run's events.jsonl: replay, then live, across every segment (cancel or crash, then resume)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from engine.protocol import TERMINAL_TYPES, Event, EventReader
from engine.run_store import STARTING_GRACE_S, RunDir, as_time


@dataclass(slots=True)
class SegmentOpened(Event):
    """Not on the wire: a reader's marker that a newer engine (a resume) has taken the run over."""

    type: ClassVar[str] = "segment_opened"


def follow_events(run: RunDir, *, reader: EventReader | None = None, poll_s: float = 0.2,
                  stop: Callable[[], bool] = lambda: False, follow: bool = True, start: int = 0,
                  skip_lines: int = 0) -> Iterator[Event]:
    """Replay a run's events.jsonl from byte `start` (skipping `skip_lines` whole lines), then follow it.

    A run may have several segments (cancel or crash, then `--resume`): a `finished` event ends the stream
    only when nothing follows it and no newer engine is training the run; when one is (it may still be
    loading, with nothing written yet), a `SegmentOpened` marker says the run is open again.
    """
    reader = reader or EventReader()
    buffer = b""
    position = start
    idle_checks = 0
    last_terminal: Event | None = None
    while not stop():
        try:
            with open(run.events_path, "rb") as fh:
                fh.seek(position)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            position += len(chunk)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if skip_lines > 0:
                    skip_lines -= 1
                    continue
                event = reader.feed(line)
                if event is not None:
                    yield event
                    last_terminal = event if event.type in TERMINAL_TYPES else (
                        None if event.type == "run_started" else last_terminal)
            idle_checks = 0
            continue
        if not follow:
            break
        if last_terminal is not None:
            if not _newer_segment_running(run, last_terminal.ts):
                return
            last_terminal = None  # from here on, the newer engine's life decides when to stop
            idle_checks = 0
            yield SegmentOpened()
        idle_checks += 1
        if idle_checks % 5 == 0 and not run.engine_alive():
            if run.engine_info():
                break  # engine gone without a terminal event: crashed
            if time.time() - as_time(run.meta().get("created")) > STARTING_GRACE_S:
                break  # the engine never started
        time.sleep(poll_s)
    if buffer.strip() and skip_lines <= 0:
        event = reader.feed(buffer)  # a last line without newline: parsed if whole, counted if truncated
        if event is not None:
            yield event


def _newer_segment_running(run: RunDir, terminal_ts: float) -> bool:
    """True when an engine started after `terminal_ts` (a resume) holds the run."""
    return as_time(run.engine_info().get("started")) > as_time(terminal_ts) and run.engine_alive()
