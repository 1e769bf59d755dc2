"""The short run names the app shows (`lora-38b8`, `38b8`, `184554-c371`, `lora 184554-c371`), matched to run ids."""

from __future__ import annotations


def matching_names(names: list[str], text: str) -> list[str]:
    """The run ids among `names` that `text` names: the id itself, a unique prefix, or a short name (the id's
    tail, or its time and suffix, after a method if one is given); all of them when ambiguous, none when nothing
    fits."""
    if text in names:
        return [text]
    matches = [n for n in names if n.startswith(text)]
    if matches or not text.strip():
        return matches
    *method, short = text.split()
    stamp, _, suffix = short.partition("-")

    def shortened(name: str) -> bool:
        parts = name.split("-")
        if method and method[0] not in parts[2:-1]:
            return False
        return name.endswith(f"-{short}") or (len(parts) >= 4 and bool(suffix) and parts[1] == stamp
                                              and parts[-1] == suffix)

    return [n for n in names if shortened(n)]
