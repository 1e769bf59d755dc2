"""Starts the engine as a detached subprocess and reads its events (from the pipe, or by following the file)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from engine.event_follow import SegmentOpened, follow_events
from engine.protocol import TERMINAL_TYPES, Event, EventReader
from engine.run_lock import LOCKED_EXIT, RunLocked, is_locked
from engine.run_store import ENGINE, LOG, RunDir, cancel_pid
from lf_common.files import write_json

METHODS_PATH_ENV = "LF_TUI_METHODS_PATH"  # = methods.catalogue.METHODS_PATH_ENV (not imported: this module stays light)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# what the UI needs of the light engine modules, re-exported so it imports only protocol, run_store and launcher
__all__ = ["EngineProcess", "RunLocked", "SegmentOpened", "cancel_pid", "follow_events", "launch"]


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
    if env.get(METHODS_PATH_ENV):  # the engine runs in PROJECT_ROOT: relative method roots must stay the same folders
        env[METHODS_PATH_ENV] = os.pathsep.join(str(Path(p).expanduser().absolute()) if p.strip() else p
                                                for p in env[METHODS_PATH_ENV].split(os.pathsep))
    return env


class EngineProcess:
    """A running engine: its events, and a way to cancel it."""

    def __init__(self, run: RunDir, popen: subprocess.Popen[bytes], events: IO[bytes] | None):
        self.run = run
        self.popen = popen
        self._events = events
        self.reader = EventReader()
        self._stream: Iterator[Event] | None = None
        self.start_offset = 0  # where this engine's segment begins in events.jsonl

    @property
    def pid(self) -> int:
        return self.popen.pid

    def events(self, stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        """Events until the run's segment ends or `stop()` (call from a worker thread; it never blocks for
        longer than a poll, so a quitting app is never held up).

        Every call continues the same stream, so a reader may stop and pick up again.
        """
        if self._stream is None:
            self._stream = self._read(stop)
        return self._stream

    def _read(self, stop: Callable[[], bool]) -> Iterator[Event]:
        """The pipe while the engine keeps it; from where it dropped it on, the file (the record)."""
        if self._events is None:
            yield from follow_events(self.run, reader=self.reader, start=self.start_offset, stop=stop)
            return
        lines = 0
        try:
            for line in _pipe_lines(self._events.fileno(), stop):
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
                self._events.close()
            except Exception:
                pass
        if stop():
            return
        if lines == 0 and self._refused():
            raise RunLocked(f"{self.run.path}: another engine is already training this run; "
                            f"`lf-tui attach {self.run.run_id}` to watch it")
        # the engine dropped the pipe (a slow reader) or died: continue from the record
        yield from follow_events(self.run, reader=self.reader, start=self.start_offset, skip_lines=lines, stop=stop)

    def _refused(self) -> bool:
        """True when the engine exited because another engine holds the run (it wrote nothing)."""
        try:
            return self.popen.wait(timeout=2) == LOCKED_EXIT
        except subprocess.TimeoutExpired:
            return False

    @property
    def running(self) -> bool:
        """The engine process has not exited."""
        return self.popen.poll() is None

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
                if stream is not None:
                    stream.close()
            except Exception:
                pass

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)


def _pipe_lines(fd: int, stop: Callable[[], bool], poll_s: float = 0.2) -> Iterator[bytes]:
    """Whole lines from a pipe until EOF or `stop()`; a last line cut short is dropped (the file has it)."""
    buffer = b""
    while not stop():
        ready, _, _ = select.select([fd], [], [], poll_s)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line + b"\n"


def supervisor_command(run: RunDir, resume: bool = False) -> list[str]:
    """A multi-process run's engine: the supervisor that starts every rank through accelerate."""
    cmd = [sys.executable, "-m", "engine", "supervise", str(run.path.absolute())]
    return cmd + (["--resume"] if resume else []) + ["--launched-at", repr(time.time())]


def launch(run: RunDir, *, resume: bool = False, pipe: bool = True) -> EngineProcess:
    """Start the engine on a run folder in its own session, with no terminal stdin; a multi-process run's
    supervisor (its ranks write events.jsonl, which the returned process follows)."""
    from engine.distributed import run_world

    if run_world(run.path) is not None:
        return _start(run, lambda fd: supervisor_command(run, resume), events_pipe=False, stdin_pipe=pipe)
    return _start(run, lambda fd: engine_command(run, fd, resume), events_pipe=pipe, stdin_pipe=pipe)


def _start(run: RunDir, command: Callable[[int | None], list[str]], events_pipe: bool,
           stdin_pipe: bool) -> EngineProcess:
    start_offset = _segment_start(run)
    log = open(run.file(LOG), "ab")
    read_fd = write_fd = None
    if events_pipe:
        read_fd, write_fd = os.pipe()
    try:
        popen = subprocess.Popen(
            command(write_fd),
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_fd,) if write_fd is not None else (),
            start_new_session=True,
            cwd=str(run.path.resolve()),
            env=engine_env(),
            close_fds=True,
        )
    except BaseException:
        if read_fd is not None:
            os.close(read_fd)
        raise
    finally:
        log.close()
        if write_fd is not None:
            os.close(write_fd)
    try:
        _record_engine(run, popen.pid)
    except OSError:
        pass  # a full or read-only disk: the engine is running and rewrites engine.json itself (or fails with kind disk)
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
