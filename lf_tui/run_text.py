"""The words both front ends show for a run (header, error), computed once; Rich and Textual only lay them out."""

from __future__ import annotations

from engine.protocol import Error, RunStarted
from lf_tui.formatting import count


def header(st: RunStarted) -> str:
    """The run's opening line: method, model, device, precision, params, examples, steps."""
    if not st.device:  # the engine failed before it knew more (the stream opened at its failure)
        return f"{st.method} on {st.base_model}"
    text = (f"{st.method} on {st.base_model} · {st.device} {st.precision} · trainable "
            f"{count(st.trainable_params)}/{count(st.total_params)} params · {st.train_examples} train / "
            f"{st.eval_examples} eval examples · {st.total_steps} steps")
    if st.resumed_from_step:
        text += f" · resumed from step {st.resumed_from_step}"
    return text


def error_lines(error: Error) -> list[str]:
    """What went wrong and what to do about it (the traceback stays in engine.log)."""
    lines = [f"{error.kind} error: {error.message}"]
    if error.hint:
        lines.append(f"hint: {error.hint}")
    return lines
