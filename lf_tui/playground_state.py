"""The Playground's state, folded from the serving process's events: which runs (and bases) answer, grouped by base
model, each answer as it streams in with its timings, and the prompts asked so far. Plain: no Textual here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.run_store import RunInfo

BASE = "base"
DEFAULT_SETTINGS = {"max_new_tokens": 32, "temperature": 0.0, "top_p": 1.0, "seed": 0}
SETTING_NAMES = {"tokens": "max_new_tokens", "max_new_tokens": "max_new_tokens", "temperature": "temperature",
                 "temp": "temperature", "top_p": "top_p", "top-p": "top_p", "seed": "seed"}


class SettingsError(ValueError):
    """A generation settings line that cannot be used; the message says which part and what is allowed."""


def parse_settings(text: str) -> dict[str, Any]:
    """`tokens=32 temperature=0.7 top_p=0.9 seed=1` (any subset, any order) → the request's settings."""
    settings = dict(DEFAULT_SETTINGS)
    for part in text.replace(",", " ").split():
        name, sep, value = part.partition("=")
        key = SETTING_NAMES.get(name.strip().lower())
        if not sep or key is None:
            raise SettingsError(f"{part!r}: write name=value with a name among tokens, temperature, top_p, seed")
        try:
            number: float = int(value) if key in ("max_new_tokens", "seed") else float(value)
        except ValueError:
            kind = "a whole number" if key in ("max_new_tokens", "seed") else "a number"
            raise SettingsError(f"{part!r}: {name} must be {kind}") from None
        if key == "max_new_tokens" and not 1 <= number <= 4096:
            raise SettingsError(f"{part!r}: tokens must be 1 to 4096")
        if key == "temperature" and number < 0:
            raise SettingsError(f"{part!r}: temperature must be 0 (greedy) or more")
        if key == "top_p" and not 0 < number <= 1:
            raise SettingsError(f"{part!r}: top_p must be in (0, 1]")
        settings[key] = number
    return settings


def settings_line(settings: dict[str, Any]) -> str:
    return (f"tokens={settings['max_new_tokens']} temp={settings['temperature']:g} "
            f"top_p={settings['top_p']:g} seed={settings['seed']}")


@dataclass
class Target:
    """A run that can answer (its trained weights exist)."""

    run_id: str
    path: str
    method: str
    base_model: str


@dataclass
class Answer:
    """One target's answer to the current prompt, as it streams in."""

    key: str  # a run id, or "base@<base model>"
    label: str
    base_model: str
    text: str = ""
    done: bool = False
    error: str | None = None
    hint: str = ""
    new_tokens: int = 0
    first_token_s: float | None = None
    tokens_per_s: float | None = None
    swap_s: float | None = None
    note: str = ""


def short_label(run_id: str, method: str) -> str:
    """`lora 120000-aaaa` for run 20260101-120000-lora-aaaa: the method, then what tells the run apart (its time
    and suffix), so a narrow column still shows it; another id stays whole."""
    parts = run_id.split("-")
    middle = "-".join(parts[2:-1])
    if len(parts) >= 4 and parts[0].isdigit() and parts[1].isdigit() and (middle == method or
                                                                          middle.endswith(f"-{method}")):
        return f"{middle} {parts[1]}-{parts[-1]}"  # a fused run: fused-lora 042251-1a2b
    return f"{method} {run_id}" if method and method not in run_id else run_id


def base_key(base_model: str) -> str:
    return f"{BASE}@{base_model}"


def servable(info: RunInfo) -> bool:
    """A run with trained weights: finished (weights/) or with a checkpoint to answer from."""
    return (info.path / "weights").is_dir() or any((info.path / "checkpoints").glob("*/weights"))


@dataclass
class Playground:
    """Targets chosen, answers for the prompt asked last, history of prompts, the serving process's status."""

    targets: dict[str, Target] = field(default_factory=dict)  # run id -> target, every servable run
    chosen: list[str] = field(default_factory=list)  # run ids, in the order they were chosen
    include_base: bool = True
    history: list[str] = field(default_factory=list)
    prompt: str = ""
    settings_text: str = ""  # the settings the current prompt was asked with, as the settings line writes them
    answers: dict[str, Answer] = field(default_factory=dict)
    loaded: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> its loaded event
    load_errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> its error event
    status: str = "starting the serving engine…"
    ready: bool = False
    busy: bool = False
    exited: str | None = None  # why the serving process ended

    # choosing ---------------------------------------------------------------
    def set_runs(self, infos: list[RunInfo]) -> None:
        self.targets = {i.run_id: Target(i.run_id, str(i.path), i.method, i.base_model) for i in infos
                        if servable(i)}
        self.chosen = [r for r in self.chosen if r in self.targets]

    def choose(self, run_ids: list[str]) -> list[str]:
        """Choose these runs (in this order); those that cannot answer are returned (not chosen)."""
        self.chosen = [r for r in dict.fromkeys(run_ids) if r in self.targets]
        return [r for r in run_ids if r not in self.targets]

    def groups(self) -> list[tuple[str, list[str]]]:
        """(base model, its chosen run ids) in the order chosen; one group per base model."""
        out: dict[str, list[str]] = {}
        for run_id in self.chosen:
            out.setdefault(self.targets[run_id].base_model, []).append(run_id)
        return list(out.items())

    # asking -------------------------------------------------------------------
    def to_load(self) -> list[str]:
        """Folders of chosen runs the serving process has not loaded (nor refused)."""
        return [self.targets[r].path for r in self.chosen if r not in self.loaded and r not in self.load_errors]

    def ask(self, prompt: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Start a new prompt: the generate request to send (answers reset, the prompt remembered)."""
        self.prompt = prompt
        self.settings_text = settings_line(settings)
        if prompt in self.history:
            self.history.remove(prompt)
        self.history.insert(0, prompt)
        self.answers = {}
        for base_model, run_ids in self.groups():
            if self.include_base:
                self.answers[base_key(base_model)] = Answer(base_key(base_model), "base model", base_model)
            for run_id in run_ids:
                target = self.targets[run_id]
                self.answers[run_id] = Answer(run_id, short_label(run_id, target.method), base_model)
        for run_id, failure in self.load_errors.items():
            if run_id in self.answers:
                self._fail(self.answers[run_id], failure)
        targets = [r for r in self.chosen if r not in self.load_errors] + ([BASE] if self.include_base else [])
        self.busy = True
        return {"type": "generate", "prompt": prompt, "targets": targets, "stream": True, **settings}

    # events -------------------------------------------------------------------
    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "ready":  # a prompt asked while it started keeps its "loading…" status
            self.ready = True
            self.status = "ready" if self.status.startswith("starting") else self.status
        elif kind == "loaded":
            self.loaded[str(event.get("run"))] = event
            self.status = f"loaded {event.get('run')} ({event.get('load_s', 0):.1f}s)"
        elif kind == "error" and event.get("run"):
            self.load_errors[str(event["run"])] = event
            self.status = f"cannot serve {event['run']}: {event.get('error')}"
        elif kind == "error":
            self.status = f"error: {event.get('error')}"
        elif kind in ("partial", "answer"):
            self._answer(event)
        elif kind == "done":
            if event.get("request") == "generate":
                self.busy = False
                self.status = "ready"
            elif event.get("request") == "load":
                self.status = f"{len(self.loaded)} run(s) loaded on {event.get('bases_loaded', 0)} base model(s)"
        elif kind == "exited":
            self.ready, self.busy = False, False
            tail = str(event.get("stderr") or "").strip().splitlines()
            self.exited = f"the serving engine exited (code {event.get('returncode')})" + (
                f": {tail[-1]}" if tail else "")
            self.status = self.exited

    def _answer(self, event: dict[str, Any]) -> None:
        target = str(event.get("target"))
        key = base_key(str(event.get("base_model", ""))) if target == BASE else target
        answer = self.answers.get(key)
        if answer is None:
            if target != BASE:
                return
            # a base answer we did not expect (no base model known for it): show it anyway
            base_model = str(event.get("base_model", ""))
            answer = self.answers[key] = Answer(key, "base model", base_model)
        if event.get("error"):
            self._fail(answer, event)
            return
        answer.text = str(event.get("text", ""))
        answer.new_tokens = int(event.get("new_tokens") or 0)
        if event.get("type") == "answer":
            answer.done = True
            answer.first_token_s = _number(event.get("first_token_s"))
            answer.tokens_per_s = _number(event.get("tokens_per_s"))
            answer.swap_s = _number(event.get("swap_s"))
            answer.note = str(event.get("note") or "")

    @staticmethod
    def _fail(answer: Answer, event: dict[str, Any]) -> None:
        answer.done = True
        answer.error = f"{event.get('kind', 'error')} error: {event.get('error')}"
        answer.hint = str(event.get("hint") or "")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def one_line(text: str, width: int = 60) -> str:
    """A prompt shortened to one line for the history list."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"
