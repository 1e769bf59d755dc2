"""Rich consoles for the CLI: messages never hard-wrap (paths stay greppable); tables fit the terminal."""

from __future__ import annotations

import sys

from rich.console import Console


def out() -> Console:
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)
