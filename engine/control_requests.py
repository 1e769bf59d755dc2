"""Live controls of a running training: requests appended to the run folder's control.jsonl by any viewer (the app,
`lf-tui control`, another terminal), read by the engine at each step boundary. Light: no torch.

Actions: "checkpoint" (save one now, then go on) and "stop_after_eval" (at the next evaluation, save a checkpoint
and end the run as completed, stopped by the user). The engine acknowledges each request with a `control` event
in events.jsonl ({"type": "control", "request": id, "action", "status": "done" | "armed" | "stopping" | "refused",
"detail"}); a request the run can no longer act on (it is at its last step, or ended) is refused with the reason,
so every viewer sees it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTROL_FILE = "control.jsonl"
ACTIONS = {"checkpoint": "checkpoint now", "stop_after_eval": "stop after the next evaluation"}
ALIASES = {"checkpoint": "checkpoint", "stop-after-eval": "stop_after_eval", "stop_after_eval": "stop_after_eval"}


MULTI_PROCESS = ("run {run} trains in {size} processes: live controls (checkpoint now, stop after the next "
                 "evaluation) work in single-process runs only; cancel it instead (it saves a checkpoint that "
                 "`lf-tui train --resume` continues from)")


def multi_process_refusal(run_path: str | os.PathLike[str]) -> str | None:
    """Why a run cannot take live controls (it trains in several processes), or None when it can."""
    from engine.distributed import run_world

    world = run_world(Path(run_path))
    return None if world is None else MULTI_PROCESS.format(run=Path(run_path).name, size=world.size)


class ControlRefused(ValueError):
    """A control request that cannot be sent; the message says why."""


@dataclass
class ControlRequest:
    id: str
    action: str
    source: str = ""
    ts: float = 0.0


def action_name(text: str) -> str:
    """`checkpoint` / `stop-after-eval` (either spelling) → the action; anything else: ControlRefused."""
    action = ALIASES.get(text.strip().lower())
    if action is None:
        raise ControlRefused(f"unknown control {text!r}: use checkpoint or stop-after-eval")
    return action


def send(run_path: str | os.PathLike[str], action: str, source: str = "") -> ControlRequest:
    """Append one request to the run's control file (an atomic single write of one line) and return it."""
    action = action_name(action)
    path = Path(run_path)
    if not path.is_dir():
        raise ControlRefused(f"{path}: no such run folder")
    refusal = multi_process_refusal(path)
    if refusal is not None:
        raise ControlRefused(refusal)
    request = ControlRequest(secrets.token_hex(4), action, source, time.time())
    line = json.dumps({"id": request.id, "action": action, "source": source, "ts": request.ts}) + "\n"
    fd = os.open(path / CONTROL_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # less the umask
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return request


class ControlInbox:
    """The engine's side: new requests since the last look (cheap when nothing was written: one stat).

    Made at the engine's start, before anything slow: `since` keeps the requests already in the file sent at or
    after that time (0: every one, a new run's), so a request sent while the engine loads is answered once it
    trains. Without `since`, the requests already there (an earlier segment's) are skipped."""

    def __init__(self, run_path: str | os.PathLike[str], skip_existing: bool = True,
                 since: float | None = None) -> None:
        self.path = Path(run_path) / CONTROL_FILE
        self.offset = 0
        self._pending: list[ControlRequest] = []
        if since is not None:
            self._pending = [r for r in self._read() if r.ts >= since]
        elif skip_existing and self.path.exists():
            self.offset = self.path.stat().st_size

    def poll(self) -> list[ControlRequest]:
        """The requests not returned before, oldest first."""
        pending, self._pending = self._pending, []
        return pending + self._read()

    def _read(self) -> list[ControlRequest]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size <= self.offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(size - self.offset)
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next look
        self.offset += len(complete)
        out = []
        for raw in complete.splitlines():
            try:
                doc: Any = json.loads(raw)
                out.append(ControlRequest(str(doc["id"]), action_name(str(doc["action"])), str(doc.get("source", "")),
                                          float(doc.get("ts", 0.0))))
            except (ValueError, KeyError, TypeError, ControlRefused):
                continue  # a malformed line is skipped, never a crash of the training
        return out
