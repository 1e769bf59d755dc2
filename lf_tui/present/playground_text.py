"""The Playground's words: an answer's timings line, a base-model group's heading, the screen's title."""

from __future__ import annotations

from lf_tui.playground_state import Answer, Playground


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def timings(answer: Answer) -> str:
    """Under an answer: first-token latency, tokens/s, the adapter swap, the token count (or its progress)."""
    if answer.error:
        return answer.hint and f"hint: {answer.hint}"
    if not answer.done:
        return f"generating… {answer.new_tokens} tokens" if answer.new_tokens else "waiting…"
    rate = f"{answer.tokens_per_s:.1f} tok/s" if answer.tokens_per_s is not None else "- tok/s"
    line = f"first token {seconds(answer.first_token_s)} · {rate} · {answer.new_tokens} tokens"
    if answer.swap_s is not None and not answer.key.startswith("base@"):
        line += f" · swap {seconds(answer.swap_s)}"
    return line


def group_heading(state: Playground, base_model: str) -> str:
    runs = dict(state.groups()).get(base_model, [])
    heading = f"base model {base_model} · {len(runs)} run{'s' if len(runs) != 1 else ''}"
    if len(state.groups()) > 1:
        heading += " · a base of its own (runs on different base models are compared within their group)"
    return heading


def title(state: Playground) -> str:
    groups = state.groups()
    chosen = len(state.chosen)
    if not chosen:
        what = "no run chosen: space marks one in the list (or mark runs in F2 Runs and press g)"
    else:
        what = (f"{chosen} run{'s' if chosen != 1 else ''}" + (" + base" if state.include_base else "")
                + f" on {len(groups)} base model{'s' if len(groups) != 1 else ''}")
    return f"Playground · {what} · {state.status}"
