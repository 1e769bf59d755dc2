"""Writes each event as one line to the run's events.jsonl (the record) and, best effort, to the event pipe."""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import EngineError, disk_error
from engine.protocol import Event, RunStarted

# what a run that can no longer write its record still sends (to the pipe, and to stderr: engine.log or the terminal)
ENDING_TYPES = frozenset({"run_started", "log", "error", "finished"})


class Emitter:
    """Thread-safe event sink that never blocks on a reader.

    `events.jsonl` is the record and is always written first. The pipe is non-blocking: when its reader is
    slow or gone (a full pipe, a broken pipe) the pipe is dropped and the run goes on; readers then follow
    the file from where the pipe left them.

    When the file cannot be written (no space left, a read-only disk) `failure` says why: every training event
    from then on raises it (a DiskError); the run's start and ending (ENDING_TYPES) still reach the pipe and
    stderr.
    """

    def __init__(self, events_path: Path, pipe_fd: int | None = None):
        self.events_path = events_path
        self.failure: EngineError | None = None
        self._file: Any = None
        try:
            _end_partial_line(events_path)  # a segment that crashed mid-line must not swallow our first line
            self._file = open(events_path, "a", encoding="utf-8")
        except OSError as exc:
            self._fail(exc)
        self._pipe_fd = pipe_fd
        if pipe_fd is not None:
            os.set_blocking(pipe_fd, False)
        self._lock = threading.Lock()
        self._started = False
        self._pending: list[Event] = []
        self.pipe_dropped_reason = ""

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

    def continue_segment(self) -> None:
        """The segment's run_started was written by another process (a multi-process run's rank 0)."""
        self._started = True

    def ensure_started(self, event: RunStarted) -> None:
        """Open the stream with `event` if setup failed before the real run_started."""
        if not self._started:
            self.emit(event)

    def _write(self, event: Event) -> None:
        failed_before = self.failure
        if failed_before is not None and event.type not in ENDING_TYPES:
            raise failed_before  # nothing more of the training without its record
        line = event.to_line()
        with self._lock:
            if self._file is not None:
                try:
                    self._file.write(line)
                    self._file.flush()
                except OSError as exc:
                    self._fail(exc)
            if self._pipe_fd is not None:
                self._write_pipe(line.encode("utf-8"))
        if self.failure is None:
            return
        if event.type in ENDING_TYPES:  # (the run's next training event raises)
            _tell_stderr(event)
            return
        raise self.failure

    def _fail(self, exc: OSError) -> None:
        """The record cannot be written: say why from now on; the half-written file is let go."""
        self.failure = disk_error(exc, f"writing the run's events to {self.events_path} failed") or EngineError(
            "internal", f"writing the run's events to {self.events_path} failed: {exc}",
            "check the run folder's disk; engine.log may say more")
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # its unwritten tail is lost with the disk

    def _write_pipe(self, data: bytes) -> None:
        try:
            written = os.write(self._pipe_fd, data)  # type: ignore[arg-type]
        except BlockingIOError:
            self._drop_pipe("the reader fell behind (pipe full)")
            return
        except OSError as exc:
            self._drop_pipe("the reader went away" if exc.errno in (errno.EPIPE, errno.EBADF) else str(exc))
            return
        if written < len(data):  # a partial line: the reader discards it and continues from the file
            self._drop_pipe("the reader fell behind (pipe full)")

    def _drop_pipe(self, reason: str) -> None:
        fd, self._pipe_fd = self._pipe_fd, None
        self.pipe_dropped_reason = reason
        try:
            os.close(fd)  # type: ignore[arg-type]
        except OSError:
            pass

    @property
    def piping(self) -> bool:
        return self._pipe_fd is not None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    self._fail(exc)
            if self._pipe_fd is not None:
                self._drop_pipe("closed")


def note_ending_in_place(engine_json: Path, ending: dict[str, Any]) -> bool:
    """The record of last resort, for a run whose events and summary could not be written (a full disk): its
    ending added to this engine's own engine.json ({"ended": {status, error, error_kind, error_hint}}), rewritten in
    place, so no new file is needed (a full disk still takes a write into a block the file holds). False when that
    fails too, or when engine.json is another process's."""
    import json

    try:
        with open(engine_json, "r+b") as fh:
            info = json.loads(fh.read() or b"{}")
            if not isinstance(info, dict) or info.get("pid") != os.getpid():
                return False
            data = json.dumps({**info, "ended": ending}).encode("utf-8")
            fh.seek(0)
            fh.write(data)
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
        return True
    except (OSError, ValueError):
        return False


def _tell_stderr(event: Event) -> None:
    """A run whose record failed: its ending as a line on stderr (engine.log, when that can still be written)."""
    if event.type == "error":
        text = f"error ({getattr(event, 'kind', '')}): {getattr(event, 'message', '')}; {getattr(event, 'hint', '')}"
    elif event.type == "finished":
        text = f"the run ended {getattr(event, 'status', '')} (events.jsonl could not record it)"
    else:
        return
    try:
        print(f"lf-tui engine: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _end_partial_line(path: Path) -> None:
    try:
        with open(path, "rb+") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
    except FileNotFoundError:
        return


class RankEmitter:
    """The sink of a rank other than 0 in a multi-process run: no events (rank 0 writes them); logs and errors go
    to the rank's own log."""

    piping = False
    pipe_dropped_reason = ""

    def __init__(self, on_error: Callable[[str], None] | None = None):
        self.on_error = on_error

    def emit(self, event: Event) -> None:
        message = getattr(event, "message", None)
        if message:
            print(f"[{event.type}] {message}", flush=True)
        if event.type == "error" and self.on_error is not None:
            self.on_error(str(message))

    def ensure_started(self, event: RunStarted) -> None:
        return None

    def close(self) -> None:
        return None
