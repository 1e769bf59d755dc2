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


def disk_size(n_bytes: float | None) -> str:
    """Bytes on disk as people read file sizes: `512 B`, `120 KiB`, `3.5 MiB`, `14.2 GiB`; — when unknown."""
    if n_bytes is None:
        return "—"
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" or abs(value) >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # unreachable


def seconds(value: float | None) -> str:
    """A short time as measured: `850 µs`, `18.6 ms`, `1.24 s`; — when unknown."""
    if value is None:
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def rate(value: float | None) -> str:
    """Tokens per second: `65.0`, `1,234`; — when unknown."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
