"""Maps JSON paths (``a.b[0].c``) to line and column in the JSON text they came from."""

from __future__ import annotations

import re

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


def join_path(parent: str, key: str | int) -> str:
    """Append a key or list index to a dotted JSON path."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def locate_paths(text: str) -> dict[str, tuple[int, int]]:
    """Return {path: (line, column)} (1-based) for every key and array item; {} if the text is not JSON."""
    import json

    positions: dict[str, tuple[int, int]] = {}
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(offset: int) -> tuple[int, int]:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - line_starts[lo] + 1

    def skip(i: int) -> int:
        return _WS.match(text, i).end()  # type: ignore[union-attr]

    def value(i: int, path: str, depth: int) -> int:
        if depth > 200:
            raise ValueError("too deep")
        i = skip(i)
        ch = text[i : i + 1]
        if ch == "{":
            i = skip(i + 1)
            if text[i : i + 1] == "}":
                return i + 1
            while True:
                i = skip(i)
                m = _STRING.match(text, i)
                if not m:
                    raise ValueError("key expected")
                key = json.loads(m.group())
                child = join_path(path, key)
                positions.setdefault(child, where(i))
                i = skip(m.end())
                if text[i : i + 1] != ":":
                    raise ValueError(": expected")
                i = value(i + 1, child, depth + 1)
                i = skip(i)
                if text[i : i + 1] == ",":
                    i += 1
                    continue
                if text[i : i + 1] == "}":
                    return i + 1
                raise ValueError(", or } expected")
        if ch == "[":
            i = skip(i + 1)
            if text[i : i + 1] == "]":
                return i + 1
            index = 0
            while True:
                i = skip(i)
                child = join_path(path, index)
                positions.setdefault(child, where(i))
                i = skip(value(i, child, depth + 1))
                index += 1
                if text[i : i + 1] == ",":
                    i += 1
                    continue
                if text[i : i + 1] == "]":
                    return i + 1
                raise ValueError(", or ] expected")
        m = _STRING.match(text, i) or _SCALAR.match(text, i)
        if not m:
            raise ValueError("value expected")
        return m.end()

    try:
        value(0, "", 0)
    except (ValueError, IndexError):
        return positions
    return positions
