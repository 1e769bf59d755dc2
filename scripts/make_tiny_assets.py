"""Regenerates engine/assets: the bundled sample dataset and the built-in model's tokenizer.

Run `python scripts/make_tiny_assets.py`; the outputs are committed so users never need to run it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "engine" / "assets"

CAPITALS = {"France": "Paris", "Spain": "Madrid", "Italy": "Rome", "Germany": "Berlin", "Japan": "Tokyo",
            "Egypt": "Cairo", "Peru": "Lima", "Kenya": "Nairobi", "Canada": "Ottawa", "Norway": "Oslo",
            "Greece": "Athens", "Chile": "Santiago", "India": "New Delhi", "China": "Beijing", "Cuba": "Havana",
            "Poland": "Warsaw", "Ireland": "Dublin", "Portugal": "Lisbon", "Austria": "Vienna", "Sweden": "Stockholm"}
FRENCH = {"cat": "chat", "dog": "chien", "house": "maison", "water": "eau", "bread": "pain", "apple": "pomme",
          "book": "livre", "car": "voiture", "sun": "soleil", "moon": "lune", "tree": "arbre", "sea": "mer",
          "friend": "ami", "school": "école", "cheese": "fromage", "milk": "lait", "door": "porte", "hand": "main"}
COLORS = {"grass": "green", "the sky": "blue", "snow": "white", "coal": "black", "a banana": "yellow",
          "a tomato": "red", "an orange": "orange", "a plum": "purple", "chocolate": "brown", "ash": "grey"}


def records() -> list[dict[str, str]]:
    rng = random.Random(7)
    out = []
    for country, city in CAPITALS.items():
        out.append({"instruction": f"What is the capital of {country}?", "input": "",
                    "output": f"The capital of {country} is {city}."})
    for en, fr in FRENCH.items():
        out.append({"instruction": "Translate the word to French.", "input": en, "output": f"In French, {en} is {fr}."})
    for thing, color in COLORS.items():
        out.append({"instruction": f"What color is {thing}?", "input": "", "output": f"{thing.capitalize()} is {color}."})
    for _ in range(120):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        out.append({"instruction": f"Add {a} and {b}.", "input": "", "output": f"{a} plus {b} is {a + b}."})
    for _ in range(60):
        word = rng.choice(list(FRENCH))
        out.append({"instruction": "Spell the word backwards.", "input": word, "output": " ".join(word[::-1])})
    rng.shuffle(out)
    return out


def build_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def main() -> None:
    ASSETS.mkdir(parents=True, exist_ok=True)
    recs = records()
    with open(ASSETS / "sample_alpaca.jsonl", "w", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    texts = [f"### Instruction:\n{r['instruction']}\n\n### Input:\n{r['input']}\n\n### Response:\n{r['output']}"
             for r in recs]
    texts += ["<|user|>\n", "<|assistant|>\n", "<|system|>\n"] * 20
    build_tokenizer(texts).save(str(ASSETS / "tiny_tokenizer.json"))
    print(f"wrote {len(recs)} records and the tokenizer to {ASSETS}")


if __name__ == "__main__":
    main()
