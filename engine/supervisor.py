"""`python -m engine supervise RUN`: a multi-process run's engine as the app sees it (light: no torch).

It holds the run's lock and engine.json, starts this machine's ranks through `accelerate launch` with the config it
writes into the run folder, turns a cancel (stdin `cancel`, SIGTERM, SIGINT) into SIGTERM to every local rank (they
agree on the step, checkpoint and stop), and when a rank dies without an ending ends the run with an error naming
the rank and its log. Machines other than 0 record only their own start and end (rank 0 writes the run's events).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from engine.distributed import RANKS_DIR, launch_command, rank_log, read_rank_records
from engine.emitter import Emitter
from engine.protocol import Error, EventReader, Finished, Log, RunStarted
from engine.run_lock import LOCKED_EXIT, RunLock, RunLocked
from engine.run_store import ENGINE, EXIT_CODES, SUMMARY, RunDir, exit_code, process_alive
from lf_common.files import write_json

POLL_S = 0.25


class Supervisor:
    """The ranks of one machine, started and watched."""

    def __init__(self, run: RunDir, cfg: Any, world: Any, resume: bool, launched_at: float | None):
        self.run, self.cfg, self.world, self.resume, self.launched_at = run, cfg, world, resume, launched_at
        self.machine_rank = cfg.hardware.distributed.machine_rank
        self.cancel_reason = ""
        self.signalled: set[int] = set()
        self.dead: list[int] = []  # ranks seen gone without an ending, in the order seen
        self.popen: subprocess.Popen[bytes] | None = None
        self.released: str | None = None  # the ranks' status, once they all ended cleanly and the lock was let go

    def request_cancel(self, reason: str) -> None:
        self.cancel_reason = self.cancel_reason or reason

    def install(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.request_cancel("SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: self.request_cancel("SIGINT"))
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        threading.Thread(target=self._watch_stdin, daemon=True).start()

    def _watch_stdin(self) -> None:
        try:
            for line in sys.stdin:
                if line.strip() == "cancel":
                    self.request_cancel("cancel command")
        except (OSError, ValueError):
            pass

    def start(self) -> None:
        args = ["run", str(self.run.path.absolute()), "--distributed"]
        if self.resume:
            args.append("--resume")
        if self.launched_at is not None:
            args += ["--launched-at", repr(self.launched_at)]
        cmd = launch_command(self.run.path, self.cfg, self.world, args)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.world.processes_per_machine)))
        self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env, cwd=str(self.run.path))

    def ended_cleanly(self, records: dict[int, dict[str, Any]]) -> str | None:
        """The status every local rank ended with, once each has recorded a clean ending (else None)."""
        first = self.machine_rank * self.world.processes_per_machine
        mine = [records.get(first + i, {}).get("status") for i in range(self.world.processes_per_machine)]
        return mine[0] if mine[0] in EXIT_CODES and all(s == mine[0] for s in mine) else None

    def watch(self, release: Any = None) -> int:
        """Until accelerate exits: forward cancels to the ranks, note ranks that die; its exit status. Once every
        local rank has ended cleanly, `release()` (the run's lock: a resume may start while the ranks tear down)."""
        assert self.popen is not None
        while True:
            code = self.popen.poll()
            if self.released is not None:  # the run is over here; a new segment may own the folder already
                if code is not None:
                    return code
                time.sleep(POLL_S)
                continue
            records = read_rank_records(self.run.path)
            status = self.ended_cleanly(records)
            if status is not None and release is not None and release():
                self.released = status
                continue
            for rank, record in records.items():
                alive = process_alive(int(record.get("pid", 0) or 0), record.get("create_time"))
                if record.get("status") == "running" and not alive and rank not in self.dead:
                    self.dead.append(rank)
                if self.cancel_reason and alive and rank not in self.signalled:
                    self.signalled.add(rank)
                    try:
                        os.kill(int(record["pid"]), signal.SIGTERM)
                    except (OSError, KeyError, ValueError):
                        pass
            if code is not None:
                return code
            time.sleep(POLL_S)


def _segment_types(run: RunDir, start: int) -> set[str]:
    """The event types written in this segment (from `start` in events.jsonl)."""
    try:
        with open(run.events_path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return set()
    return {event.type for event in EventReader().feed_all(data.splitlines())}


def _dead_rank_error(run: RunDir, dead: list[int], code: int) -> tuple[str, str]:
    """The message naming the rank that died (or failed) first, with its log, and a hint."""
    records = read_rank_records(run.path)
    # a rank's own failure before one that only lost its peers (they fail too, a moment later)
    failed = sorted((r for r, rec in records.items() if rec.get("status") == "failed"),
                    key=lambda r: (bool(records[r].get("peer_lost")), r))
    rank = dead[0] if dead else (failed[0] if failed else None)
    if rank is None:
        return (f"accelerate launch exited with status {code} before every rank ended; its output is in "
                f"{run.file('engine.log')}", "a rank could not start: read engine.log")
    record = records.get(rank, {})
    if rank not in dead and record.get("peer_lost"):
        return (f"rank {rank} lost contact with another rank (on another machine: its ranks/ logs say why): "
                f"{record.get('error')}; its log is {rank_log(run.path, rank)}",
                "read the other machines' rank logs; a single-machine run's checkpoint can be resumed")
    why = record.get("error") or ("it exited without an ending (killed, or out of memory)" if rank in dead
                                  else "it failed")
    return (f"rank {rank} died: {why}; its log is {rank_log(run.path, rank)}",
            "read that log; the last checkpoint is kept: `lf-tui train --resume` continues from it")


def _end_here(run: RunDir, emitter: Emitter, status: str, message: str = "", hint: str = "") -> int:
    """Write this machine's ending: an error naming the rank (when one failed), summary.json, `finished`."""
    from engine.summary import build_summary

    if message:
        emitter.emit(Error(kind="distributed", message=message, hint=hint))
    summary = build_summary(status=status, total_steps=0, losses=[], eval_losses=[], training_time_s=0.0,
                            peak_memory_mb=0.0, extra={"error": message} if message else {})
    try:
        write_json(run.file(SUMMARY), summary)
    except OSError as exc:  # a full (or read-only) disk: the ending still goes to stderr and the event pipe
        print(f"lf-tui engine: could not write {run.file(SUMMARY)}: {exc}", file=sys.stderr, flush=True)
    emitter.emit(Finished(status=status, summary=summary))
    return exit_code(status)


def _release_after_ending(run: RunDir, start: int, main_machine: bool, emitter: Emitter | None,
                          lock: RunLock) -> bool:
    """Write this machine's ending (another machine's record; rank 0 wrote the main one's) and let the lock go;
    False while rank 0 has not written its ending yet (the next poll tries again)."""
    if main_machine and "finished" not in _segment_types(run, start):
        return False
    if not main_machine and emitter is not None:
        statuses = [r.get("status") for r in read_rank_records(run.path).values()]
        _end_here(run, emitter, str(statuses[0]))
        emitter.close()
    lock.release()
    return True
def supervise(run_dir: Path, resume: bool, launched_at: float | None) -> int:
    from engine.control import catch_early_signals

    catch_early_signals()
    run = RunDir(run_dir)
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except RunLocked as exc:
        print(f"error: {exc}; not starting a second one", file=sys.stderr)
        return LOCKED_EXIT
    try:
        return _supervise(run, resume, launched_at, lock)
    finally:
        lock.release()


def _supervise(run: RunDir, resume: bool, launched_at: float | None, lock: RunLock) -> int:
    import psutil

    from engine.runner import load_run_config
    from methods.distributed_rules import world_of

    write_json(run.file(ENGINE), {"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                  "started": time.time(), "supervisor": True})
    start = run.events_path.stat().st_size if run.events_path.exists() else 0
    for old in (run.path / RANKS_DIR).glob("rank-*.json"):  # the previous segment's endings
        old.unlink(missing_ok=True)
    emitter: Emitter | None = None
    cfg = load_run_config(run)
    world = world_of(cfg)
    supervisor = Supervisor(run, cfg, world, resume, launched_at)
    supervisor.install()
    main_machine = supervisor.machine_rank == 0
    if not main_machine:  # this machine's own record: its start, and later its end
        emitter = Emitter(run.events_path)
        first = supervisor.machine_rank * world.processes_per_machine
        emitter.emit(RunStarted(run_id=run.run_id, method=cfg.method_name, base_model=cfg.base_model,
                                pid=os.getpid(), world_size=world.size, strategy=world.strategy,
                                machine_rank=supervisor.machine_rank))
        emitter.emit(Log(message=f"machine {supervisor.machine_rank} of {world.num_machines}: ranks {first}-"
                                 f"{first + world.processes_per_machine - 1} train here; the run's events, "
                                 f"checkpoints and weights are written on machine 0 "
                                 f"({cfg.hardware.distributed.main_process_ip})"))
    supervisor.start()
    code = supervisor.watch(release=lambda: _release_after_ending(run, start, main_machine, emitter, lock))
    if supervisor.released is not None:  # ended cleanly and written; the folder may be a new segment's by now
        return exit_code(supervisor.released)
    try:
        written = _segment_types(run, start)
        if main_machine and "finished" in written:
            return exit_code(str((run.summary() or {}).get("status", "failed")))
        if emitter is None:
            emitter = Emitter(run.events_path)
            if "run_started" in written:
                emitter.continue_segment()
            else:
                emitter.emit(RunStarted(run_id=run.run_id, method=cfg.method_name, base_model=cfg.base_model,
                                        pid=os.getpid(), world_size=world.size, strategy=world.strategy))
        statuses = [r.get("status") for r in read_rank_records(run.path).values()]
        if not main_machine and code == 0 and statuses and all(s in EXIT_CODES for s in statuses):
            return _end_here(run, emitter, str(statuses[0]))
        message, hint = _dead_rank_error(run, supervisor.dead, code)
        return _end_here(run, emitter, "failed", message, hint)
    finally:
        if emitter is not None:
            emitter.close()
