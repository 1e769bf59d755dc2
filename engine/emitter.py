"""Writes each event as one line to the run's events.jsonl (flushed) and to the event pipe, if any."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from engine.protocol import Event, RunStarted


class Emitter:
    """Thread-safe event sink; a reader that goes away (broken pipe) never stops the run."""

    def __init__(self, events_path: Path, pipe_fd: int | None = None):
        self._file = open(events_path, "a", encoding="utf-8")
        self._pipe = os.fdopen(pipe_fd, "w", encoding="utf-8") if pipe_fd is not None else None
        self._lock = threading.Lock()
        self._started = False
        self._pending: list[Event] = []

    def emit(self, event: Event) -> None:
        """Events before `run_started` wait for it, so every stream opens with the protocol version."""
        if not self._started:
            if not isinstance(event, RunStarted):
                self._pending.append(event)
                return
            self._started = True
            self._write(event)
            for pending in self._pending:
                self._write(pending)
            self._pending.clear()
            return
        self._write(event)

    def ensure_started(self, event: RunStarted) -> None:
        """Open the stream with `event` if setup failed before the real run_started."""
        if not self._started:
            self.emit(event)

    def _write(self, event: Event) -> None:
        line = event.to_line()
        with self._lock:
            self._file.write(line)
            self._file.flush()
            if self._pipe is not None:
                try:
                    self._pipe.write(line)
                    self._pipe.flush()
                except (BrokenPipeError, OSError, ValueError):
                    self._drop_pipe()

    def _drop_pipe(self) -> None:
        pipe, self._pipe = self._pipe, None
        try:
            pipe.close()  # type: ignore[union-attr]
        except Exception:
            pass

    def close(self) -> None:
        with self._lock:
            self._file.close()
            if self._pipe is not None:
                self._drop_pipe()
