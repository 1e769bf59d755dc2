"""A prefix-tuning export's model card: its loading code, run as written, answers as lf-tui's own generate does."""

from __future__ import annotations

import re
from pathlib import Path

from engine.data import prompt_ids
from engine.export import CARD, export
from engine.generate import format_prompt, generate
from engine.run_store import RunStore
from tests.conftest import make_config, train

PROMPT = "Say the greeting."


def card_code(card: str) -> str:
    """The python blocks of the card's "How to load" section, joined as one script."""
    section = card.split("## How to load", 1)[1]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.S))


def test_prefix_tuning_card_code_generates_through_the_prefix(learnable_dataset: Path, tmp_path: Path) -> None:
    from peft import PeftModel

    cfg = make_config("prefix_tuning", training={"max_steps": 6, "learning_rate": 3e-2},
                      hardware={"mixed_precision": "no"})
    run, _, code = train(RunStore(tmp_path / "runs"), cfg, learnable_dataset)
    assert code == 0, (run.path / "engine.log").read_text()[-3000:]
    out = tmp_path / "exported"
    export(run.path, out)
    card = (out / CARD).read_text(encoding="utf-8")
    assert "not `model.generate`" in card
    scope: dict[str, object] = {}
    exec(compile(card_code(card), str(out / CARD), "exec"), scope)  # the card's code, as a user pastes it
    assert isinstance(scope["model"], PeftModel)
    text = format_prompt(scope["tokenizer"], PROMPT, "alpaca")
    assert scope["prompt_ids"](text) == prompt_ids(scope["tokenizer"], text)  # type: ignore[operator]
    ours = generate(run, PROMPT, max_new_tokens=12, compare_base=True)
    answer = scope["generate"](text, max_new_tokens=12)  # type: ignore[operator]
    assert answer == ours["completion"]
    assert answer != ours["base_completion"]  # the prefix changed the answer: the card's code really uses it


def test_card_prompt_ids_are_training_ids_with_one_bos_or_none() -> None:
    """The card's prompt ids equal training's on a GPT-2-like base (BOS is EOS: none added) and a Llama-like one
    (one BOS), a text that already starts with the BOS included: never a doubled or extra BOS."""
    from transformers import PreTrainedTokenizerFast

    from engine.builtin_model import ASSETS
    from engine.export_card import PREFIX_GENERATE
    from engine.tokenizer_bos import add_bos_as_training_does

    code = PREFIX_GENERATE.split("```", 1)[0]
    for bos in ("</s>", "<s>"):  # GPT-2's shared <|endoftext|>, then a distinct BOS
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(ASSETS / "tiny_tokenizer.json"), bos_token=bos,
                                            eos_token="</s>", pad_token="<pad>")
        add_bos_as_training_does(tokenizer)  # as load_tokenizer does, so as the export saves it
        scope: dict[str, object] = {"tokenizer": tokenizer}
        exec(compile(code, "card", "exec"), scope)
        for text in ("### Instruction:\nSay the greeting.\n\n### Response:\n", "<s>hello"):
            ids = scope["prompt_ids"](text)  # type: ignore[operator]
            assert ids == prompt_ids(tokenizer, text), (bos, text)
        assert tokenizer.eos_token_id not in scope["prompt_ids"]("Say it.")  # type: ignore[operator]
