"""Rich consoles for the CLI: messages never hard-wrap (paths stay greppable); tables fit the terminal; a closed
pipe (`lf-tui train | head -3`) silences the console instead of ending the command."""

from __future__ import annotations

import os
import sys

from rich.console import Console


class PipeTolerantConsole(Console):
    """A console whose reader went away prints nothing more, and the command goes on (Rich's default exits 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        stream = sys.stderr if self.stderr else sys.stdout
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())  # later writes (this console's, print's, the exit's flush) vanish
        finally:
            os.close(devnull)


def out() -> Console:
    return PipeTolerantConsole(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def err() -> Console:
    return PipeTolerantConsole(stderr=True, highlight=False, soft_wrap=True,
                               width=None if sys.stderr.isatty() else 200)
