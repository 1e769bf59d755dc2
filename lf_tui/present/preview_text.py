"""The data preview as Rich text (trained tokens highlighted, masked ones grey), shared by the CLI and the editor."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text

# alternate shades show where one token ends and the next begins
TRAINED_STYLES = ("bold bright_white on dark_green", "bold bright_white on green4")
MASKED_STYLES = ("grey70", "grey50")
NEWLINE = "↵"
OPEN, CLOSE = "⟦", "⟧"  # trained spans when the output has no colours (a pipe, a file)
BAR = 40


def legend(plain: bool) -> Text:
    if plain:
        return Text(f"trained tokens are inside {OPEN}…{CLOSE}; the rest is context (masked, no loss); "
                    f"{NEWLINE} marks a newline")
    text = Text("legend: ")
    text.append("trained (loss)", style=TRAINED_STYLES[0])
    text.append("  ")
    text.append("masked (context, no loss)", style=MASKED_STYLES[0])
    text.append(f"  alternating shades separate tokens; {NEWLINE} marks a newline")
    return text


def _visible(piece: str) -> str:
    return piece.replace("\n", NEWLINE + "\n")


def tokens_text(tokens: list[dict[str, Any]], plain: bool = False) -> Text:
    """The tokens of one example, styled by their `trained` flag (in plain text, trained runs are bracketed)."""
    text = Text()
    inside = False
    for i, token in enumerate(tokens):
        trained = bool(token["trained"])
        piece = _visible(str(token["text"]))
        if plain:
            if trained != inside:
                text.append(OPEN if trained else CLOSE)
                inside = trained
            text.append(piece)
        else:
            styles = TRAINED_STYLES if trained else MASKED_STYLES
            text.append(piece, style=styles[i % 2])
    if plain and inside:
        text.append(CLOSE)
    return text


def example_header(number: int, example: dict[str, Any]) -> Text:
    split = example["split"]
    head = Text(f"example {number} · {example['where']} · ", style="bold")
    label = {"train": ("train", "green"), "eval": ("eval (held out)", "cyan")}.get(split)
    if label is None:
        head.append(f"DROPPED: {example.get('reason', 'nothing to train')}", style="bold red")
    else:
        head.append(label[0], style=label[1])
    cut = (f", cut to {example['kept_tokens']} at max_seq_length" if example["truncated"] else "")
    head.append(f" · {example['length']} tokens{cut}, {example['trained_tokens']} trained", style="default")
    return head


def histogram_lines(result: dict[str, Any]) -> list[Text]:
    bins = result["lengths"]["histogram"]
    top = max((b["count"] for b in bins), default=0) or 1
    max_len = result["max_seq_length"]
    width = len(str(bins[-1]["to"])) if bins else 1
    lines = []
    for b in bins:
        span = f"{b['from']}" if b["from"] == b["to"] else f"{b['from']}-{b['to']}"
        over = b["from"] > max_len
        line = Text(f"  {span:>{2 * width + 1}} ")
        line.append("█" * max(1 if b["count"] else 0, round(BAR * b["count"] / top)), style="red" if over else "cyan")
        line.append(f" {b['count']}")
        if b["from"] <= max_len < b["to"]:
            line.append(f"  ← max_seq_length {max_len} falls in this range", style="yellow")
        elif over:
            line.append("  (truncated)", style="red")
        lines.append(line)
    return lines


def summary_lines(result: dict[str, Any]) -> list[Text]:
    eval_part = (f"{result['eval_examples']} eval from {result['eval_source']}" if result.get("eval_source") else
                 f"{result['eval_examples']} held out for eval")
    lines = [Text.from_markup(
        f"[bold]{escape(result['dataset'])}[/bold] · {result['format']} · {result['records']} record(s): "
        f"{result['train_examples']} train, {escape(eval_part)}"),
        Text(f"tokenizer of {result['base_model']} · template: {result['template']} · "
             f"max_seq_length {result['max_seq_length']} · batches: {result['padding_reduction']}"
             + (" · train_on_prompt" if result["train_on_prompt"] else ""))]
    if result.get("packing_note"):
        lines.append(Text(result["packing_note"], style="dim"))
    return lines


def counts_lines(result: dict[str, Any]) -> list[Text]:
    lengths, max_len = result["lengths"], result["max_seq_length"]
    lines = [Text(f"token lengths (after the template): min {lengths['min']}, mean {lengths['mean']}, "
                  f"max {lengths['max']}", style="bold")]
    lines += histogram_lines(result)
    over = result["longer_than_max"]
    lines.append(Text(f"{over} of {result['records']} example(s) longer than max_seq_length={max_len} "
                      f"{'are' if over != 1 else 'is'} truncated", style="yellow" if over else "green"))
    none = result["no_trained_tokens"]
    total = none["empty_response"] + none["truncated_away"]
    if total:
        lines.append(Text(f"warning: {total} example(s) have no trained token left and are dropped from training "
                          f"({none['truncated_away']} truncated away, {none['empty_response']} with an empty "
                          "response)", style="bold yellow"))
    else:
        lines.append(Text("every example has trained tokens", style="green"))
    return lines


def preview_renderables(result: dict[str, Any], plain: bool = False) -> list[RenderableType]:
    """Everything the preview shows, in order: the summary, the legend, each example, the lengths and counts."""
    parts: list[RenderableType] = [*summary_lines(result), legend(plain), Text("")]
    for number, example in enumerate(result["examples"], 1):
        parts += [example_header(number, example), tokens_text(example["tokens"], plain), Text("")]
    parts += counts_lines(result)
    parts += [Text(f"note: {note}", style="dim") for note in result.get("notes", [])]
    return parts


def preview_group(result: dict[str, Any], plain: bool = False) -> Group:
    return Group(*preview_renderables(result, plain))
