"""The pipe is best effort: the engine never blocks on a reader, and a reader continues from the file."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from engine.emitter import Emitter
from engine.launcher import EngineProcess
from engine.protocol import Finished, Log, RunStarted, Step
from engine.run_store import RunDir


def _events(n: int) -> list:
    return [RunStarted(run_id="r", method="lora"), *[Step(step=i, loss=1.0 / i, total_steps=n) for i in range(1, n + 1)],
            Finished(status="completed", summary={"total_steps": n})]


def test_an_unread_pipe_never_blocks_the_engine(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    emitter = Emitter(tmp_path / "events.jsonl", write_fd)
    events = _events(3000)  # ~400 KB: a blocking pipe would stall after ~64 KB
    done = threading.Event()

    def emit_all() -> None:
        for event in events:
            emitter.emit(event)
        done.set()

    threading.Thread(target=emit_all, daemon=True).start()
    assert done.wait(30), "the emitter blocked on a pipe nobody reads"
    assert not emitter.piping and "pipe full" in emitter.pipe_dropped_reason
    emitter.close()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == len(events) and json.loads(lines[-1])["type"] == "finished"
    os.close(read_fd)


def test_a_gone_reader_is_dropped_and_the_record_stays_whole(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    emitter = Emitter(tmp_path / "events.jsonl", write_fd)
    for event in _events(5):
        emitter.emit(event)
    assert not emitter.piping and "went away" in emitter.pipe_dropped_reason
    emitter.close()
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 7


class _FakePopen:
    pid = 0
    stdin = None


def test_reader_continues_from_the_file_where_the_pipe_was_dropped(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    earlier = Log(level="info", message="an earlier segment").to_line()
    events = _events(50)
    lines = [e.to_line() for e in events]
    run.events_path.write_text(earlier + "".join(lines))
    read_fd, write_fd = os.pipe()
    os.write(write_fd, "".join(lines[:20]).encode() + lines[20][:15].encode())  # 20 whole lines, then a cut one
    os.close(write_fd)
    proc = EngineProcess(run, _FakePopen(), os.fdopen(read_fd, "rb"))  # type: ignore[arg-type]
    proc.start_offset = len(earlier)
    got = list(proc.events())
    assert [e.to_dict() for e in got] == [e.to_dict() for e in events]
    assert proc.reader.skipped == 0


def test_a_half_line_left_by_a_crash_does_not_swallow_the_next_segment(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(Step(step=1, loss=1.0).to_line() + '{"type":"step","st')
    emitter = Emitter(path)
    emitter.emit(RunStarted(run_id="r", resumed_from_step=1))
    emitter.close()
    assert json.loads(path.read_text().splitlines()[-1])["type"] == "run_started"
