"""Starts the engine as a detached subprocess and reads its events (from the pipe, or by following the file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.protocol import TERMINAL_TYPES, Event, EventReader
from engine.run_lock import is_locked
from engine.run_store import ENGINE, LOG, STARTING_GRACE_S, RunDir
from methods.config_file import write_json

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def engine_command(run: RunDir, events_fd: int | None, resume: bool = False) -> list[str]:
    """The engine's argument list (never a shell string)."""
    cmd = [sys.executable, "-m", "engine", "run", str(run.path.absolute())]
    if events_fd is not None:
        cmd += ["--events-fd", str(events_fd)]
    if resume:
        cmd.append("--resume")
    return cmd + ["--launched-at", repr(time.time())]


def engine_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class EngineProcess:
    """A running engine: its events, and a way to cancel it."""

    def __init__(self, run: RunDir, popen: subprocess.Popen[bytes], events: object | None):
        self.run = run
        self.popen = popen
        self._events = events
        self.reader = EventReader()
        self._stream: Iterator[Event] | None = None
        self.start_offset = 0  # where this engine's segment begins in events.jsonl

    @property
    def pid(self) -> int:
        return self.popen.pid

    def events(self) -> Iterator[Event]:
        """Events until the engine closes the pipe (blocking: call from a worker thread).

        Every call continues the same stream, so a reader may stop and pick up again.
        """
        if self._stream is None:
            self._stream = self._read()
        return self._stream

    def _read(self) -> Iterator[Event]:
        """The pipe while the engine keeps it; from where it dropped it on, the file (the record)."""
        if self._events is None:
            yield from follow_events(self.run, reader=self.reader, start=self.start_offset)
            return
        lines = 0
        try:
            for line in self._events:  # type: ignore[attr-defined]  # binary readline: no line-length limit
                if not line.endswith(b"\n"):
                    break  # a line cut short when the engine dropped a full pipe: the file has it whole
                lines += 1
                event = self.reader.feed(line)
                if event is not None:
                    yield event
                    if event.type in TERMINAL_TYPES:
                        return
        except (ValueError, OSError):
            return  # detached: the pipe was closed on our side
        finally:
            try:
                self._events.close()  # type: ignore[attr-defined]
            except Exception:
                pass
        # the engine dropped the pipe (a slow reader) or died: continue from the record
        yield from follow_events(self.run, reader=self.reader, start=self.start_offset, skip_lines=lines)

    def cancel(self) -> None:
        """Ask the engine to stop at the next step boundary (it saves a checkpoint)."""
        try:
            if self.popen.stdin and not self.popen.stdin.closed:
                self.popen.stdin.write(b"cancel\n")
                self.popen.stdin.flush()
                return
        except (BrokenPipeError, OSError):
            pass
        cancel_pid(self.pid)

    def detach(self) -> None:
        """Stop reading; the engine keeps running (stdin EOF is not a cancel)."""
        for stream in (self.popen.stdin, self._events):
            try:
                stream.close()  # type: ignore[union-attr]
            except Exception:
                pass

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)


def launch(run: RunDir, *, resume: bool = False, pipe: bool = True) -> EngineProcess:
    """Start the engine on a run folder in its own session, with no terminal stdin."""
    start_offset = _segment_start(run)
    log = open(run.file(LOG), "ab")
    read_fd = write_fd = None
    if pipe:
        read_fd, write_fd = os.pipe()
    try:
        popen = subprocess.Popen(
            engine_command(run, write_fd, resume),
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_fd,) if write_fd is not None else (),
            start_new_session=True,
            cwd=str(run.path.resolve()),
            env=engine_env(),
            close_fds=True,
        )
    finally:
        log.close()
        if write_fd is not None:
            os.close(write_fd)
    _record_engine(run, popen.pid)
    events = os.fdopen(read_fd, "rb") if read_fd is not None else None
    process = EngineProcess(run, popen, events)
    process.start_offset = start_offset
    return process


def _record_engine(run: RunDir, pid: int) -> None:
    """engine.json at once (the engine rewrites it when it starts), so readers see the new segment as live
    from the first moment, not the previous segment's ending. Left alone when another engine holds the run."""
    if is_locked(run.path):
        return
    try:
        import psutil

        create_time = psutil.Process(pid).create_time()
    except Exception:
        return
    write_json(run.file(ENGINE), {"pid": pid, "create_time": create_time, "started": time.time()})


def _segment_start(run: RunDir) -> int:
    """Where the next segment's first line will be: the end of the file (past a crashed half line)."""
    try:
        size = run.events_path.stat().st_size
        with open(run.events_path, "rb") as fh:
            fh.seek(max(0, size - 1))
            return size + (0 if size == 0 or fh.read(1) == b"\n" else 1)  # the engine ends a half line first
    except FileNotFoundError:
        return 0


def cancel_pid(pid: int) -> bool:
    """Send SIGTERM (the engine treats it as cancel); False when the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def follow_events(run: RunDir, *, reader: EventReader | None = None, poll_s: float = 0.2,
                  stop: Callable[[], bool] = lambda: False, follow: bool = True, start: int = 0,
                  skip_lines: int = 0) -> Iterator[Event]:
    """Replay a run's events.jsonl from byte `start` (skipping `skip_lines` whole lines), then follow it.

    A run may have several segments (cancel or crash, then `--resume`): a `finished` event ends the stream
    only when nothing follows it and no newer engine is training the run.
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
        if last_terminal is not None and not _newer_segment_running(run, last_terminal.ts):
            return
        idle_checks += 1
        if idle_checks % 5 == 0 and not run.engine_alive():
            if run.engine_info():
                break  # engine gone without a terminal event: crashed
            if time.time() - float(run.meta().get("created") or 0) > STARTING_GRACE_S:
                break  # the engine never started
        time.sleep(poll_s)
    if buffer.strip() and skip_lines <= 0:
        event = reader.feed(buffer)  # a last line without newline: parsed if whole, counted if truncated
        if event is not None:
            yield event


def _newer_segment_running(run: RunDir, terminal_ts: float) -> bool:
    """True when an engine started after `terminal_ts` (a resume) holds the run."""
    return float(run.engine_info().get("started") or 0) > terminal_ts and run.engine_alive()
