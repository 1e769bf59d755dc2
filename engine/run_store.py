"""The run store: one folder per run, atomic writes, and status read back tolerantly (never a crash)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.event_stats import scan
from engine.protocol import Finished
from engine.run_lock import holder_pid, is_locked
from engine.run_names import matching_names
from engine.store_space import ENV_RUNS_DIR, store_error, unwritable_reason
from engine.store_space import MIN_FREE_BYTES as MIN_FREE_BYTES  # re-exported: callers ask the store
from engine.store_space import StoreWriteError as StoreWriteError
from lf_common.files import write_json
from methods.secrets import SECRET_KEY, redact  # noqa: F401  (the store's redaction, re-exported)

CONFIG, META, ENGINE, EVENTS, SUMMARY, LOG = (
    "config.json", "meta.json", "engine.json", "events.jsonl", "summary.json", "engine.log")
STARTING_GRACE_S = 60.0
LIVE = ("running", "starting")  # statuses of a run whose engine is (or is about to be) training
EXIT_CODES = {"completed": 0, "cancelled": 130}  # any other ending: 1
ENDINGS = ("completed", "cancelled", "failed")  # the statuses a run ends with (Finished.status)
INTERRUPTED = EXIT_CODES["cancelled"]  # a viewer stopped by Ctrl-C (or detached) exits as a cancelled run does


class RunNotFound(LookupError):
    """No run matches the id or path."""


class RunRefused(RuntimeError):
    """The store refuses an operation on a run now (e.g. deleting a running one); the message says why."""


def exit_code(status: str) -> int:
    """The process exit code for a run that ended `status`: 0 completed, 130 cancelled, 1 otherwise."""
    return EXIT_CODES.get(status, 1)


def cancel_pid(pid: int) -> bool:
    """Send SIGTERM (the engine treats it as cancel); False when the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def default_runs_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--runs-dir, else $LF_TUI_RUNS_DIR, else ./runs."""
    return Path(os.path.expanduser(explicit or os.environ.get(ENV_RUNS_DIR) or "runs"))


def new_run_id(method: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    return f"{stamp}-{method}-{secrets.token_hex(2)}"


def read_json(path: Path) -> Any:
    """JSON of a file, or None when it is missing or corrupt."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def as_time(value: Any) -> float:
    """A timestamp from a file we do not trust: 0.0 when it is not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0  # NaN is not a time


def as_pid(value: Any) -> int:
    """A process id from a file we do not trust: 0 when it is not a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return 0
    try:
        pid = int(value)
    except ValueError:
        return 0
    return pid if pid > 0 else 0


def process_alive(pid: int, create_time: float | None) -> bool:
    """True when `pid` runs and (if known) is the same process that started at `create_time`."""
    if not pid or pid <= 0:
        return False
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except Exception:
        return False


@dataclass
class RunInfo:
    """What the store knows of one run, for listings."""

    run_id: str
    path: Path
    status: str = "unknown"  # starting | running | completed | cancelled | failed | crashed | corrupt
    method: str = ""
    base_model: str = ""
    started: float | None = None
    steps: int = 0
    total_steps: int = 0
    final_loss: float | None = None
    best_loss: float | None = None
    best_eval_loss: float | None = None
    duration_s: float | None = None
    problems: list[str] = field(default_factory=list)
    trust_remote_code: bool = False
    derived_from: list[str] = field(default_factory=list)  # a fused run's parent run ids (meta.json)
    deployment: dict[str, Any] | None = None  # the summary's deployment figures (engine/deployment.py)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


class RunDir:
    """One run's folder."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).absolute()  # the engine runs elsewhere: a relative path would point nowhere
        self.run_id = self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def weights_dir(self) -> Path:
        return self.path / "weights"

    def config(self) -> dict[str, Any] | None:
        return read_json(self.file(CONFIG))

    def meta(self) -> dict[str, Any]:
        meta = read_json(self.file(META))
        return meta if isinstance(meta, dict) else {}

    def summary(self) -> dict[str, Any] | None:
        return read_json(self.file(SUMMARY))

    def engine_info(self) -> dict[str, Any]:
        info = read_json(self.file(ENGINE))
        return info if isinstance(info, dict) else {}

    def latest_checkpoint(self) -> Path | None:
        if not self.checkpoints_dir.is_dir():
            return None
        done = [p for p in self.checkpoints_dir.glob("step-*") if (p / "trainer_state.json").is_file()]
        return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)

    def engine_alive(self) -> bool:
        """True while this run's engine process lives (its lock held, or its recorded pid running)."""
        if is_locked(self.path):
            return True
        info = self.engine_info()
        return process_alive(as_pid(info.get("pid")), info.get("create_time"))

    def engine_pid(self) -> int | None:
        """The pid of this run's live engine (the recorded one, else the lock holder's), or None."""
        info = self.engine_info()
        pid = as_pid(info.get("pid"))
        if process_alive(pid, info.get("create_time")):
            return pid
        if is_locked(self.path):
            holder = holder_pid(self.path) or 0
            return holder if process_alive(holder, None) else None
        return None

    def cancel(self) -> str | None:
        """Ask this run's engine to cancel (it saves a checkpoint and stops at the next step boundary).

        None when the engine was signalled; otherwise why nothing was done, in words for the user.
        """
        status = self.info().status
        if status not in LIVE:
            return f"run {self.run_id} is {status}, not running: nothing to cancel"
        pid = self.engine_pid()
        if pid is None or not cancel_pid(pid):
            return f"could not signal the engine of run {self.run_id} (is it still starting? try again)"
        return None

    def writable_refusal(self, sub: str = "") -> str | None:
        """Why this run's folder (or its `sub` folder, e.g. eval/, when it exists) cannot take the files a resumed
        engine or an evaluation writes (read-only, full), or None."""
        folder = self.path / sub if sub and (self.path / sub).exists() else self.path
        return unwritable_reason(folder, what=f"run {self.run_id}'s folder",
                                 fix="make it writable, or copy the run folder to a writable runs folder and use it "
                                     "there")

    def eval_refusal(self) -> str | None:
        """Why an evaluation of this run must not start (its scores could not be saved), in one sentence, or None."""
        refusal = self.writable_refusal("eval")
        return None if refusal is None else f"nothing was scored: the scores are saved in the run's folder, and {refusal}"

    def delete_refusal(self) -> str | None:
        """Why this run's folder must not be deleted now (its engine is live), or None when it may."""
        status = self.info().status
        if status in LIVE or self.engine_alive():
            return f"run {self.run_id} is {status if status in LIVE else 'running'}: cancel the run before deleting it"
        return None

    def delete(self) -> None:
        """Remove the run's folder and every file in it; RunRefused while its engine is live."""
        refusal = self.delete_refusal()
        if refusal is not None:
            raise RunRefused(refusal)
        try:
            shutil.rmtree(self.path)
        except FileNotFoundError:  # already gone (deleted from another window): the wish is fulfilled
            pass
        except OSError as exc:  # a read-only store: say which folder and why, in the store's words
            raise RunRefused(str(store_error(self.path, exc, f"run {self.run_id}'s folder",
                                             "make the runs folder writable to delete it"))) from None

    def _mtime(self, name: str) -> float:
        try:
            return self.file(name).stat().st_mtime
        except OSError:
            return 0.0

    def resume_refusal(self, ended: str = "") -> str | None:
        """Why this run cannot be resumed now (running, completed, no checkpoint), or None when it can; `ended`: the
        status a viewer saw it end with (its engine may hold the run a moment longer, or have no summary written)."""
        status = ended or self.info().status
        if status in ("running", "starting"):
            return f"run {self.run_id} is still running; `lf-tui attach {self.run_id}` to watch it"
        if status == "completed":
            return f"run {self.run_id} has completed; start a new run to train further"
        if self.latest_checkpoint() is None:
            return f"run {self.run_id} has no complete checkpoint to resume from; start a new run with its config"
        return None

    def info(self) -> RunInfo:
        """Read status and figures; tolerate every missing or corrupt file, reporting it in `problems`."""
        meta, summary = self.meta(), self.summary()
        info = RunInfo(self.run_id, self.path, method=meta.get("method", ""), base_model=meta.get("base_model", ""),
                       started=meta.get("created"), trust_remote_code=bool(meta.get("trust_remote_code")))
        parents = meta.get("derived_from")
        info.derived_from = [str(p) for p in parents] if isinstance(parents, list) else []
        if not meta:
            info.problems.append("meta.json missing or corrupt")
        stats = scan(self.events_path)
        terminal = None
        if stats is None:
            if meta:
                info.problems.append("events.jsonl missing")
        else:
            info.steps, info.total_steps, info.final_loss = stats.steps, stats.total_steps, stats.final_loss
            info.best_loss, info.duration_s, terminal = stats.best_loss, stats.elapsed_s, stats.terminal
            info.method, info.base_model = info.method or stats.method, info.base_model or stats.base_model
            if stats.problem:
                info.problems.append(stats.problem)
            if stats.skipped or stats.partial_tail:
                info.problems.append(f"{stats.skipped + stats.partial_tail} unreadable event line(s) skipped")
        engine = self.engine_info()
        # an engine started after the run last ended is a resumed segment: that ending is history
        newer_segment = (terminal is not None or summary is not None) and \
            as_time(engine.get("started")) > (as_time(terminal.ts) if terminal is not None else self._mtime(SUMMARY))
        if summary is not None and not newer_segment:
            info.status = summary.get("status", "completed")
            info.best_eval_loss = summary.get("best_eval_loss")
            deployment = summary.get("deployment")
            info.deployment = deployment if isinstance(deployment, dict) else None
            info.duration_s = summary.get("training_time_s", info.duration_s)
            if summary.get("final_loss") is not None:  # a resume that failed at once has none: keep the events'
                info.final_loss = summary["final_loss"]
        elif self.engine_alive():
            info.status = "running"
        elif isinstance(terminal, Finished) and not newer_segment:
            info.status = terminal.status
            info.problems.append("summary.json missing")
        elif terminal is not None and not newer_segment:
            info.status = "failed"
        elif (ended := engine.get("ended")) and isinstance(ended, dict) and ended.get("status") in ENDINGS:
            info.status = str(ended["status"])  # the record of last resort: engine.json alone took the ending
            info.problems.append("the ending is only in engine.json: events.jsonl and summary.json could not be "
                                 "written (a full disk?)")
        elif not engine and info.started and time.time() - info.started < STARTING_GRACE_S:
            info.status = "starting"
        elif not meta and not self.events_path.exists():
            info.status = "corrupt"
        else:
            info.status = "crashed"
        return info


class RunStore:
    """The folder holding every run."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = default_runs_dir(root).absolute()

    def writable_refusal(self) -> str | None:
        """Why no run can be created in this store now (one sentence: folder, cause, what to do), or None."""
        return unwritable_reason(self.root)

    def create(self, method: str, config: dict[str, Any], meta: dict[str, Any] | None = None) -> RunDir:
        """Make a new run folder with its resolved config; the id is unique even for runs started together.

        StoreWriteError (one sentence: the folder, the cause, what to do) when the store cannot be written; a
        folder begun before the write failed is removed, so no half-made run is listed."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise store_error(self.root, exc) from None
        while True:
            run_id = new_run_id(method)
            try:
                (self.root / run_id).mkdir()
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise store_error(self.root, exc) from None
        run = RunDir(self.root / run_id)
        try:
            write_json(run.file(CONFIG), redact(config))
            write_json(run.file(META), {"run_id": run_id, "method": method, "created": time.time(),
                                        "base_model": config.get("base_model", ""), **(meta or {})})
        except OSError as exc:
            shutil.rmtree(run.path, ignore_errors=True)
            raise store_error(self.root, exc) from None
        return run

    def list(self) -> list[RunInfo]:
        """Every run, newest first; foreign files and broken folders are listed or skipped, never fatal."""
        if not self.root.is_dir():
            return []
        infos = []
        for child in self.root.iterdir():
            if not child.is_dir() or child.name.startswith("."):
                continue
            try:
                infos.append(RunDir(child).info())
            except Exception as exc:  # a broken folder must not break the listing
                infos.append(RunInfo(child.name, child, status="corrupt", problems=[repr(exc)]))
        return sorted(infos, key=lambda i: (i.started or 0, i.run_id), reverse=True)

    def resolve(self, id_or_path: str) -> RunDir:
        """A run by folder path, exact id, unique id prefix, or a short name the app shows: the id's tail
        (`lora-38b8`, `38b8`) or its time and suffix (`184554-c371`, `lora 184554-c371`). A folder that is not a
        run folder (no meta.json or events.jsonl) is refused as such; so is a runs folder that does not exist."""
        def is_run(folder: Path) -> bool:
            return folder.is_dir() and ((folder / META).is_file() or (folder / EVENTS).is_file())

        text = id_or_path.strip()
        p = Path(text).expanduser()
        if is_run(p):
            return RunDir(p)
        written_as_path = p.is_absolute() or text.startswith((".", "~")) or os.sep in text
        if written_as_path or (p.exists() and not (self.root / text).exists()):
            if p.is_dir():
                raise RunNotFound(f"{p} is a folder but not a run folder (it has no meta.json or events.jsonl): "
                                  "give a run id or a run's folder (see `lf-tui runs`)")
            if p.exists():
                raise RunNotFound(f"{p} is a file, not a run folder: give a run id or a run's folder")
            raise RunNotFound(f"no run folder {p}: it does not exist (see `lf-tui runs`)")
        if not self.root.is_dir():
            where = "is not a folder" if self.root.exists() else "does not exist"
            raise RunNotFound(f"no run {text!r}: the runs folder {self.root} {where} (give the right one with "
                              f"--runs-dir or {ENV_RUNS_DIR})")
        names = sorted(c.name for c in self.root.iterdir() if c.is_dir() and not c.name.startswith("."))
        matches = matching_names(names, text)
        if len(matches) == 1:
            if not is_run(self.root / matches[0]):
                raise RunNotFound(f"{self.root / matches[0]} is a folder but not a run folder (it has no meta.json "
                                  "or events.jsonl)")
            return RunDir(self.root / matches[0])
        if len(matches) > 1:
            shown = ", ".join(matches[:4]) + (", ..." if len(matches) > 4 else "")
            raise RunNotFound(f"{text!r} matches {len(matches)} runs in {self.root} ({shown}); give more of the id")
        raise RunNotFound(f"no run {text!r} in {self.root} (see `lf-tui runs`)")
