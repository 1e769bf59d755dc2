"""Errors the engine reports to users: a kind, a message and a hint (never a bare traceback)."""

from __future__ import annotations


class EngineError(Exception):
    """A failure with a user-facing explanation.

    Kinds: config, data, model, unsupported_hardware, oom, resume, diverged (the loss became NaN/infinite or
    spiked: a training result, not a crash; the message names the step and the last good checkpoint), internal.
    """

    def __init__(self, kind: str, message: str, hint: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint


class DataError(EngineError):
    def __init__(self, message: str, hint: str = ""):
        super().__init__("data", message, hint)


class Diverged(EngineError):
    """Training diverged at `step`; nothing of that step (or later) was saved."""

    def __init__(self, step: int, message: str, hint: str = ""):
        super().__init__("diverged", message, hint)
        self.step = step


class Cancelled(Exception):
    """Raised inside the loop when a cancel was requested (handled, not an error)."""
