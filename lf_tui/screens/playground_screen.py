"""The Playground: one prompt, answers from several runs and their base side by side, streamed from one serving
process that loads each base model once; the prompts asked so far can be asked again."""

from __future__ import annotations

import threading
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from engine.run_store import RunStore
from engine.serve_client import ServeClient
from lf_tui.playground_state import (
    BASE,
    DEFAULT_SETTINGS,
    Answer,
    Playground,
    SettingsError,
    one_line,
    parse_settings,
    settings_line,
    short_label,
)
from lf_tui.present.playground_text import group_heading, timings, title
from lf_tui.widgets.fit_footer import FitFooter
from lf_tui.widgets.marked_list import MarkedSelectionList

CARD_MIN_WIDTH = 24
SERVE_CLIENT: list[type[ServeClient]] = [ServeClient]  # what a Playground talks to (tests swap in a replay)


class ServeEvent(Message):
    """One event from the serving process (posted from its reader thread)."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event = event


class AnswerCard(Vertical):
    """One target's answer: who answers, the text as it streams in, its timings."""

    DEFAULT_CSS = """
    AnswerCard { height: auto; border: round $primary; padding: 0 1; }
    AnswerCard .card-title { text-style: bold; }
    AnswerCard .card-timing { color: $text-muted; }
    AnswerCard.-error { border: round $error; }
    """

    def __init__(self, answer: Answer) -> None:
        super().__init__()
        self.answer = answer

    def compose(self) -> ComposeResult:
        yield Static(escape(self.answer.label), classes="card-title")
        yield Static(classes="card-text")
        yield Static(classes="card-timing")

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        answer = self.answer
        text = f"[red]{escape(answer.error)}[/red]" if answer.error else escape(answer.text) or "…"
        if answer.note:
            text += f"\n[dim]{escape(answer.note)}[/dim]"
        self.query_one(".card-text", Static).update(text)
        self.query_one(".card-timing", Static).update(escape(timings(answer)))
        self.set_class(bool(answer.error), "-error")


class PlaygroundScreen(Screen[None]):
    """Choose runs (and the base) on the left, type a prompt below, read the answers side by side."""

    DEFAULT_CSS = """
    PlaygroundScreen #pg-title { width: 100%; height: auto; max-height: 2; }
    PlaygroundScreen #pg-body { height: 1fr; }
    PlaygroundScreen #pg-side { width: 32; height: 1fr; }
    PlaygroundScreen #pg-targets { height: 2fr; }
    PlaygroundScreen #pg-history { height: 1fr; }
    PlaygroundScreen #pg-answers { width: 1fr; height: 1fr; }
    PlaygroundScreen .pg-group { color: $accent; text-style: bold; padding: 0 1; }
    PlaygroundScreen .pg-row { height: auto; grid-gutter: 0 1; }
    PlaygroundScreen #pg-ask { height: 3; }
    PlaygroundScreen #pg-prompt { width: 1fr; }
    PlaygroundScreen #pg-settings { width: 40; }
    PlaygroundScreen .pg-asked { color: $text-muted; padding: 0 1; height: auto; }
    PlaygroundScreen .pg-caption { width: 100%; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("ctrl+g", "ask", "Ask", priority=True),
        Binding("f7", "focus_targets", "Choose runs"),
        Binding("f8", "focus_history", "Asked"),
        Binding("f9", "focus_prompt", "Prompt"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store: RunStore, run_ids: list[str] | None = None, include_base: bool = True,
                 client_class: type[ServeClient] | None = None) -> None:
        super().__init__()
        self.store = store
        self.state = Playground(include_base=include_base)
        self.initial = list(run_ids or [])
        self.client: ServeClient | None = None
        self.client_class = client_class or SERVE_CLIENT[0]
        self.cards: dict[str, AnswerCard] = {}
        self.pending: dict[str, Any] | None = None  # a generate request waiting for its runs to load

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(escape(title(self.state)), id="pg-title", classes="title")
        with Horizontal(id="pg-body"):
            with Vertical(id="pg-side"):
                yield Label("Answer from (space: ✓):", classes="pg-caption")
                yield MarkedSelectionList(id="pg-targets")
                yield Label("Asked (Enter: again):", classes="pg-caption")
                yield OptionList(id="pg-history")
            yield VerticalScroll(id="pg-answers")
        with Horizontal(id="pg-ask"):
            yield Input(placeholder="a prompt; Enter asks every chosen run", id="pg-prompt")
            yield Input(settings_line(DEFAULT_SETTINGS), id="pg-settings", tooltip="tokens, temperature, top_p, seed")
        yield FitFooter()

    @property
    def targets_list(self) -> SelectionList[str]:
        return self.query_one("#pg-targets", SelectionList)

    def on_mount(self) -> None:
        self.load_runs()
        self.client = self.client_class(self._post_event)
        self.start_client()
        self.query_one("#pg-prompt", Input).focus()

    def _post_event(self, event: dict[str, Any]) -> None:
        self.post_message(ServeEvent(event))  # thread-safe: from the client's reader thread

    def on_unmount(self) -> None:
        if self.client is not None:  # not a worker: the screen's workers are cancelled as it goes
            threading.Thread(target=self.client.close, daemon=True, name="serve-close").start()

    @work(thread=True, exclusive=True, exit_on_error=False, group="pg-runs")
    def load_runs(self) -> None:
        runs = self.store.list()  # disk I/O off the event loop
        self.app.call_from_thread(self._show_runs, runs)

    @work(thread=True, exit_on_error=False, group="pg-serve")
    def start_client(self) -> None:
        assert self.client is not None
        self.client.start()

    def choose_runs(self, run_ids: list[str]) -> None:
        """Choose these runs (the Runs screen's `g` on an open Playground): the list is read again first."""
        self.initial = list(run_ids)
        self.load_runs()

    def _show_runs(self, runs: list[Any]) -> None:
        state = self.state
        state.set_runs(runs)
        refused = state.choose(self.initial) if self.initial else []
        if refused:
            self.notify(f"no trained weights yet: {', '.join(refused)} (not in the playground)", severity="warning")
        listing = self.targets_list
        listing.clear_options()
        listing.add_option(("base model", BASE, state.include_base))
        for run_id, target in state.targets.items():
            listing.add_option((short_label(run_id, target.method), run_id, run_id in state.chosen))
        self._retitle()

    def _retitle(self) -> None:
        self.query_one("#pg-title", Label).update(escape(title(self.state)))

    @on(SelectionList.SelectedChanged, "#pg-targets")
    def _chosen(self) -> None:
        picked = self.targets_list.selected
        keep = [r for r in self.state.chosen if r in picked]
        self.state.chosen = keep + [r for r in picked if r != BASE and r not in keep]
        self.state.include_base = BASE in picked
        self._retitle()

    # asking -------------------------------------------------------------------
    @on(Input.Submitted, "#pg-prompt")
    def _submitted(self) -> None:
        self.action_ask()

    @on(Input.Submitted, "#pg-settings")
    def _settings_submitted(self) -> None:
        self.action_ask()

    @on(OptionList.OptionSelected, "#pg-history")
    def _ask_again(self, event: OptionList.OptionSelected) -> None:
        prompt = self.state.history[event.option_index]
        self.query_one("#pg-prompt", Input).value = prompt
        self.action_ask()

    def action_ask(self) -> None:
        state = self.state
        prompt = self.query_one("#pg-prompt", Input).value.strip()
        if not prompt:
            self.notify("type a prompt first", severity="warning")
            return
        if not state.chosen and not state.include_base:
            self.notify("choose a run (or the base model) in the list first", severity="warning")
            return
        if not state.chosen:
            self.notify("the base model is the runs' base: choose at least one run", severity="warning")
            return
        if state.busy or self.pending is not None:
            self.notify("still answering the last prompt", severity="warning")
            return
        if self.client is None or not self.client.running:
            self.notify(state.exited or "the serving engine is not running yet", severity="warning")
            return
        try:
            settings = parse_settings(self.query_one("#pg-settings", Input).value)
        except SettingsError as exc:
            self.notify(f"settings: {exc}", severity="error", timeout=8)
            return
        request = state.ask(prompt, settings)
        self._build_cards()
        self._show_history()
        folders = state.to_load()
        if folders:
            state.status = f"loading {len(folders)} run(s)…"
            self.pending = request
            self.client.send({"type": "load", "runs": folders})
        else:
            self.client.send(request)
        self._retitle()

    def _build_cards(self) -> None:
        answers = self.query_one("#pg-answers", VerticalScroll)
        answers.remove_children()
        self.cards = {}
        state = self.state
        answers.mount(Static(escape(f"“{one_line(state.prompt, 200)}” · {state.settings_text}"), classes="pg-asked"))
        for base_model, run_ids in state.groups():
            keys = [k for k, a in state.answers.items() if a.base_model == base_model and
                    (k in run_ids or k.startswith(f"{BASE}@"))]
            row = Grid(*[self._card(state.answers[k]) for k in keys], classes="pg-row")
            row.styles.grid_size_columns = self._columns(len(keys))
            answers.mount(Label(escape(group_heading(state, base_model)), classes="pg-group"), row)

    def _columns(self, cards: int) -> int:
        """Side by side while each card keeps CARD_MIN_WIDTH columns; more cards wrap onto the next row."""
        width = self.query_one("#pg-answers", VerticalScroll).size.width or self.size.width
        return max(1, min(cards, width // CARD_MIN_WIDTH))

    def on_resize(self) -> None:
        self.query_one("#pg-side").styles.width = 26 if self.size.width < 100 else 32  # answers get the room
        for row in self.query(".pg-row").results(Grid):
            row.styles.grid_size_columns = self._columns(len(row.children))

    def _card(self, answer: Answer) -> AnswerCard:
        card = self.cards[answer.key] = AnswerCard(answer)
        return card

    def _show_history(self) -> None:
        history = self.query_one("#pg-history", OptionList)
        history.clear_options()
        history.add_options([Option(escape(one_line(p, 26))) for p in self.state.history])
        history.highlighted = 0 if self.state.history else None

    # the serving process's events -----------------------------------------------
    @on(ServeEvent)
    def _event(self, message: ServeEvent) -> None:
        event = message.event
        state = self.state
        state.apply(event)
        if event.get("type") == "done" and event.get("request") == "load" and self.pending is not None:
            request, self.pending = self.pending, None
            for run_id, failure in state.load_errors.items():
                answer = state.answers.get(run_id)
                if answer is not None and not answer.done:
                    state._fail(answer, failure)
                    self._refresh_card(run_id)
            request["targets"] = [t for t in request["targets"] if t not in state.load_errors]
            if self.client is not None:
                self.client.send(request)
        if event.get("type") in ("partial", "answer"):
            target = str(event.get("target"))
            self._refresh_card(f"{BASE}@{event.get('base_model', '')}" if target == BASE else target)
        if event.get("type") == "exited" and self.is_mounted:
            self.pending = None
            self.notify(state.status, severity="error", timeout=10)
        self._retitle()

    def _refresh_card(self, key: str) -> None:
        card = self.cards.get(key)
        if card is None and key in self.state.answers:  # a base answer nobody expected: add it to its group
            self._build_cards()
            card = self.cards.get(key)
        if card is not None and card.is_mounted:
            card.show()

    # keys ---------------------------------------------------------------------
    def action_focus_targets(self) -> None:
        self.targets_list.focus()

    def action_focus_history(self) -> None:
        self.query_one("#pg-history", OptionList).focus()

    def action_focus_prompt(self) -> None:
        self.query_one("#pg-prompt", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()
