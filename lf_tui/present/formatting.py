"""Small text formatters shared by the CLI and the TUI."""

from __future__ import annotations

from pathlib import Path


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


def count(n: int | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def shown_path(path: Path | str) -> str:
    """A path as a person wants to read it: relative to the working directory when it lies inside it."""
    p = Path(path)
    try:
        rel = p.absolute().relative_to(Path.cwd())
    except ValueError:
        return str(p)
    return str(rel) if str(rel) != "." else "."
