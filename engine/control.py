"""Cancel requests: SIGINT/SIGTERM or a `cancel` line on stdin; hang-ups and stdin EOF are ignored."""

from __future__ import annotations

import signal
import sys
import threading

EARLY_CANCEL: list[str] = []  # signals that arrived before the loop's handlers were installed


def catch_early_signals() -> None:
    """From the engine's first moment, SIGTERM/SIGINT mean cancel (never the default kill), even while
    torch imports and the model loads; `Control.install` takes any such request over."""
    signal.signal(signal.SIGINT, lambda *_: EARLY_CANCEL.append("SIGINT"))
    signal.signal(signal.SIGTERM, lambda *_: EARLY_CANCEL.append("SIGTERM"))
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


class Control:
    """A flag the training loop checks at every step boundary."""

    def __init__(self) -> None:
        self.cancel_requested = threading.Event()
        self.reason = ""

    def request_cancel(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.cancel_requested.set()

    def install(self) -> None:
        """Signal handlers and the stdin watcher (call from the main thread)."""
        signal.signal(signal.SIGINT, lambda *_: self.request_cancel("SIGINT"))
        signal.signal(signal.SIGTERM, lambda *_: self.request_cancel("SIGTERM"))
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the terminal going away is not a cancel
        threading.Thread(target=self._watch_stdin, name="stdin-watch", daemon=True).start()
        if EARLY_CANCEL:
            self.request_cancel(EARLY_CANCEL[0])

    def _watch_stdin(self) -> None:
        try:
            for line in sys.stdin:
                if line.strip() == "cancel":
                    self.request_cancel("cancel command")
        except (OSError, ValueError):
            pass  # no stdin, or closed: keep training
