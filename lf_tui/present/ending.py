"""How a run ended, in the words both front ends show: why (error kind, message, fix) and what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import DISK_HINT
from engine.protocol import Error

FAILED = ("failed", "crashed")  # endings that may carry an error (a crash may have said why before it died)
RESUMABLE = ("cancelled", "failed", "crashed")  # endings a resume may continue (with a checkpoint)

# the fix that goes with an error kind, for an error that came without its own hint
KIND_HINTS = {
    "config": "correct the config (`lf-tui validate-config -c FILE` names every problem), then start a new run",
    "data": "correct the dataset (`lf-tui preview-data -c FILE --dataset D` shows how it is read), then start a "
            "new run",
    "model": "check base_model: a hub id needs the network or the hub cache, a folder needs config.json and weights",
    "unsupported_hardware": "choose hardware this machine has (hardware.device, hardware.precision)",
    "oom": "lower training.batch_size or training.max_seq_length, turn on hardware.gradient_checkpointing, or use "
           "qlora (`lf-tui plan -c FILE` estimates the peak)",
    "resume": "start a new run with this run's config (its config.json)",
    "diverged": "lower training.learning_rate or set training.max_grad_norm; the last good checkpoint is kept",
    "distributed": "read the named rank's log in the run folder's ranks/ folder",
    "disk": DISK_HINT,
    "store": "make the run's folder writable (or free space there), or copy the run folder to a writable runs "
             "folder and use it there; then run the command again",
    "task": "check the task name (`lm-eval ls tasks` lists lm-eval's), or give a local JSONL file of questions",
    "offline": "run it once where the hub is reachable (its data is then cached), or give a local JSONL file of "
               "questions",
    "missing_package": "install the package the message names into lf-tui's environment (pip install ...), then "
                       "run the command again",
    "eval": "check the task name (`lm-eval ls tasks` lists them), or give a local JSONL file of questions",
    "fuse": "fuse runs that trained an adapter on the same base model (`lf-tui runs` shows each run's method and "
            "base)",
    "export": "check the export options against the run (`lf-tui export --help`), then export again",
    "run": "give a run that has trained weights (`lf-tui runs` lists them), or wait for it to save a checkpoint",
    "request": "load the run (a load request with its folder) before asking it to generate",
    "internal": "this looks like a bug: the traceback is in the run folder's engine.log",
}
CRASHED = "its engine died without a final event (see engine.log in the run folder)"
REASON_WIDTH = 48  # the runs table's reason cell, at most


@dataclass(frozen=True)
class Failure:
    """A failed run's error: the engine's kind, message and fix (hint)."""

    kind: str
    message: str
    hint: str = ""

    @property
    def fix(self) -> str:
        """The error's own hint, else the one that goes with its kind."""
        return self.hint or KIND_HINTS.get(self.kind, "")


def failure_of(error: Error | None = None, summary: dict[str, Any] | None = None) -> Failure | None:
    """The failure from an error event (kind, message, hint), else from a summary's `error`, `error_kind` and
    `error_hint` (an older summary has no kind: `internal` unless it says it diverged); None when neither has one."""
    if error is not None and error.message:
        return Failure(error.kind or "internal", error.message, error.hint or "")
    found = summary or {}
    message = found.get("error")
    if not isinstance(message, str) or not message:
        return None
    kind = found.get("error_kind")
    if not isinstance(kind, str) or not kind:
        kind = "diverged" if found.get("diverged_at_step") is not None else "internal"
    hint = found.get("error_hint")
    return Failure(kind, message, hint if isinstance(hint, str) else "")


def error_line(failure: Failure) -> str:
    """`data error: the dataset has no records`."""
    return f"{failure.kind} error: {failure.message}"


def clipped(text: str, width: int) -> str:
    """One line of at most `width` characters, an ellipsis where it was cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[:max(1, width - 1)].rstrip() + "…"


def reason(status: str, failure: Failure | None, width: int = REASON_WIDTH) -> str:
    """Why a run ended, on one line at most `width` wide: the error's kind and message, a crash, a cancel;
    — for a run that completed or is still going."""
    if failure is not None and status in FAILED:
        return clipped(f"{failure.kind}: {failure.message}", width)
    if status == "failed":
        return "failed: see engine.log"
    if status == "crashed":
        return clipped("engine stopped without a final event", width)
    if status == "cancelled":
        return "cancel requested"
    if status == "corrupt":
        return "not a readable run folder"
    return "—"


def resume_line(run_id: str, in_app: bool) -> str:
    """How to continue a run from its last checkpoint, in the app (`r`) or the shell."""
    if in_app:
        return "r resumes it from its last checkpoint"
    return f"resume it from its last checkpoint: lf-tui train --resume {run_id}"


def next_steps(run_id: str, status: str, failure: Failure | None, resume_refusal: str | None,
               in_app: bool = False) -> list[str]:
    """What to do about a run that failed, crashed or was cancelled: the fix of its error kind, then resume (or
    why it cannot be resumed). Nothing for a run that completed or is still going."""
    if status not in RESUMABLE:
        return []
    lines = []
    if failure is not None and failure.fix:
        lines.append(f"hint: {failure.fix}")
    elif status == "crashed":
        lines.append(CRASHED)
    if resume_refusal:
        lines.append(resume_refusal)
    else:
        lines.append(("after the fix, " if failure is not None and failure.fix else "") + resume_line(run_id, in_app))
    return lines


def ended_lines(run_id: str, status: str, failure: Failure | None, resume_refusal: str | None,
                in_app: bool = False) -> list[str]:
    """Why a run that did not complete ended, and what to do next: the error (kind and message), its fix, resume
    (`r` in the app, the command in a shell) or why it cannot be."""
    return ([error_line(failure)] if failure is not None else []) + next_steps(run_id, status, failure,
                                                                               resume_refusal, in_app)


def left_while_cancelling(run_id: str, status: str) -> str:
    """What a second Ctrl-C in `lf-tui train` leaves behind: the cancel asked for goes on (the run saves a
    checkpoint and ends cancelled), or the run has ended already (`status`)."""
    if status in ("running", "starting"):
        return (f"stopped watching; the run is still cancelling: it saves a checkpoint, then ends cancelled "
                f"(`lf-tui attach {run_id}` follows it)")
    return f"stopped watching; the run has ended: {status}"


ENDED_WORDS = {"completed": "has completed", "cancelled": "was cancelled", "failed": "has failed",
               "crashed": "has crashed (its engine is gone)", "corrupt": "is unreadable"}


def ended_refusal(status: str, action: str) -> str:
    """Why a live control (`k`, `e`, `c`) is refused on a run with no engine left: `the run has failed: nothing
    can save a checkpoint now`."""
    what = {"checkpoint": "nothing can save a checkpoint now", "stop_after_eval": "there is no evaluation to stop "
            "after", "cancel": "there is nothing to cancel"}.get(action, "no engine answers")
    return f"the run {ENDED_WORDS.get(status, 'has ended')}: {what}"
