"""A client of the serving process (`python -m engine.serve`) for the UI: starts it, sends requests, passes each
event to a callback from a reader thread. Light: no torch here (the serving process loads it)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from engine.launcher import PROJECT_ROOT, engine_env

Event = dict[str, Any]
EXITED = "exited"  # the event the client adds when the serving process ends: {"type": "exited", "returncode", "stderr"}


class ServeClient:
    """One serving process. `on_event` is called from a reader thread, once per event, in order; the last event
    is always {"type": "exited", ...} (also when the process could not start)."""

    def __init__(self, on_event: Callable[[Event], None]) -> None:
        self.on_event = on_event
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self._lock = threading.Lock()
        self._next_id = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "engine.serve"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                         env=engine_env(), cwd=str(PROJECT_ROOT))
        except OSError as exc:
            self.on_event({"type": EXITED, "returncode": None, "stderr": f"cannot start the serving engine: {exc}"})
            return
        threading.Thread(target=self._drain_stderr, daemon=True, name="serve-stderr").start()
        threading.Thread(target=self._read, daemon=True, name="serve-events").start()

    def send(self, request: Event) -> int | None:
        """Send one request (an "id" is added and returned); None when the process is gone."""
        with self._lock:
            if not self.running or self.proc is None or self.proc.stdin is None:
                return None
            self._next_id += 1
            try:
                self.proc.stdin.write(json.dumps({**request, "id": self._next_id}) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return None
            return self._next_id

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the process to quit; kill it when it does not within `timeout_s` (it may be mid-generation)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with self._lock:
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps({"type": "quit"}) + "\n")
                proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.on_event(event)
        code = self.proc.wait()
        self.on_event({"type": EXITED, "returncode": code, "stderr": "".join(self.stderr_tail)})

    def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail.append(line)
