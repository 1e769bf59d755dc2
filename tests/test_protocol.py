"""The event protocol: round trips, tolerant parsing, version refusal."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.event_stats import scan
from engine.launcher import follow_events
from engine.protocol import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    EventReader,
    Finished,
    ProtocolError,
    RunStarted,
    Step,
    UnsupportedProtocol,
    parse_event,
)
from engine.run_store import RunDir


def test_every_event_type_round_trips() -> None:
    for cls in EVENT_TYPES.values():
        event = cls()
        assert parse_event(event.to_line()) == event


def test_reader_skips_and_counts_garbage_unknown_and_truncated_lines() -> None:
    reader = EventReader()
    lines = [RunStarted(run_id="r").to_line(), "not json\n", '{"type": "from_the_future", "x": 1}\n',
             Step(step=1, loss=2.0).to_line()[:20], "[1, 2]\n", Step(step=2, loss=1.5).to_line(), "\n"]
    events = list(reader.feed_all(lines))
    assert [e.type for e in events] == ["run_started", "step"]
    assert reader.skipped == 4


def test_added_fields_are_ignored_for_forward_compatibility() -> None:
    data = json.loads(Step(step=3).to_line()) | {"new_field": 1}
    assert parse_event(json.dumps(data)).step == 3


def test_newer_protocol_is_refused() -> None:
    line = json.dumps(RunStarted().to_dict() | {"protocol": PROTOCOL_VERSION + 1})
    with pytest.raises(UnsupportedProtocol, match="upgrade lf-tui"):
        EventReader().feed(line)


def test_finished_carries_summary() -> None:
    event = parse_event(Finished(status="cancelled", summary={"total_steps": 3}).to_line())
    assert event.status == "cancelled" and event.summary["total_steps"] == 3


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_skipped_and_counted_line_by_line(data: bytes) -> None:
    reader = EventReader()
    parsed = []
    for line in data.split(b"\n"):
        try:
            event = reader.feed(line)
        except UnsupportedProtocol:
            continue
        if event is not None:
            parsed.append(event)
    lines = [line for line in data.split(b"\n") if line.strip()]  # blank lines are not events, nor garbage
    assert reader.skipped == sum(not _parses(x) for x in lines)
    assert len(parsed) + reader.skipped == len(lines) - _refused(lines)


def _parses(line: bytes) -> bool:
    try:
        parse_event(line)
    except ProtocolError:
        return False
    return True


def _refused(lines: list[bytes]) -> int:
    return sum(1 for x in lines if _parses(x) and isinstance(e := parse_event(x), RunStarted) and e.protocol != 1)


# --- a stream of valid events, garbage between them, maybe a torn last line ---------------------------------------

_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_ANY_FLOAT = st.floats()  # NaN and infinities are written as null and read back as NaN
_JSONISH = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), _FINITE, st.text(max_size=8))
_BY_TYPE = {
    "int": st.integers(0, 10**12),
    "float": _ANY_FLOAT,
    "float | None": st.none() | _ANY_FLOAT,
    "str": st.text(max_size=30),
    "dict[str, float]": st.dictionaries(st.text(max_size=8), _FINITE, max_size=3),
    "dict[str, Any]": st.dictionaries(st.text(max_size=8), _JSONISH, max_size=3),
    "list[dict[str, Any]]": st.lists(st.dictionaries(st.text(max_size=8), _JSONISH, max_size=3), max_size=2),
}


def _event(cls: type, **fixed) -> st.SearchStrategy:
    kwargs = {f.name: _BY_TYPE[f.type] for f in fields(cls) if f.name != "ts"}
    return st.builds(cls, ts=st.floats(0, 2e9), **{**kwargs, **{k: st.just(v) for k, v in fixed.items()}})


_BODY_EVENTS = st.one_of([_event(c) for c in EVENT_TYPES.values() if c not in (RunStarted, Finished)])
_UNKNOWN_TYPE = st.text(max_size=12).filter(lambda t: t not in EVENT_TYPES)
_GARBAGE = st.one_of(
    st.text(max_size=40).map(lambda t: "#" + t),  # not JSON
    st.binary(min_size=1, max_size=40).map(lambda b: b"\xff" + b),  # not UTF-8
    st.one_of(st.lists(_JSONISH, max_size=3), _JSONISH).map(json.dumps),  # JSON, not an object
    st.builds(lambda t, extra: json.dumps({**extra, "type": t}), _UNKNOWN_TYPE | st.integers() | st.none(),
              st.dictionaries(st.text(max_size=5), _JSONISH, max_size=3)),  # an unknown type
    st.dictionaries(st.text(max_size=5).filter(lambda k: k != "type"), _JSONISH, max_size=3).map(json.dumps),
    _BODY_EVENTS.flatmap(lambda e: st.integers(1, len(e.to_line()) - 2).map(lambda n: e.to_line()[:n])),  # torn
)


def _as_bytes(line: str | bytes) -> bytes:
    return (line.encode() if isinstance(line, str) else line).replace(b"\n", b" ")


@st.composite
def _streams(draw):
    """(events, the file's bytes, how many garbage lines, the torn last event or None)."""
    events = [draw(_event(RunStarted, protocol=PROTOCOL_VERSION))] + draw(st.lists(_BODY_EVENTS, max_size=12))
    if draw(st.booleans()):
        events.append(draw(_event(Finished)))
    garbage = [_as_bytes(g) for g in draw(st.lists(_GARBAGE, max_size=8))]
    order = draw(st.permutations(["e"] * len(events) + ["g"] * len(garbage)))
    ev, gb = iter(events), iter(garbage)
    body = b"".join((next(ev).to_line().encode() if kind == "e" else next(gb) + b"\n") for kind in order)
    torn = draw(st.none() | _BODY_EVENTS)
    if torn is not None:
        cut = draw(st.integers(1, len(torn.to_line()) - 2))  # never the closing brace: a torn object is no JSON
        body += torn.to_line().encode()[:cut]
    return events, body, len(garbage), torn


def _same(parsed: list, originals: list) -> None:
    """Equal events: same classes and the same encoding (a NaN read back from null is the NaN that was written)."""
    assert [type(e) for e in parsed] == [type(e) for e in originals]
    assert [e.to_line() for e in parsed] == [e.to_line() for e in originals]


@settings(deadline=None, max_examples=80)
@given(_streams())
def test_a_stream_with_garbage_yields_exactly_its_events_and_counts_the_rest(stream) -> None:
    events, body, garbage, torn = stream
    reader = EventReader()
    parsed = list(reader.feed_all(body.split(b"\n")))  # the torn tail is fed too, as a line of its own
    _same(parsed, events)
    assert reader.skipped == garbage + (torn is not None)
    assert bool(reader.last_problem) == bool(reader.skipped)
    assert reader.protocol == PROTOCOL_VERSION

    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / "run")
        run.path.mkdir()
        run.events_path.write_bytes(body)
        follower = EventReader()
        _same(list(follow_events(run, reader=follower, follow=False)), events)
        assert follower.skipped == garbage + (torn is not None)  # a replay ends on the torn line: counted

        stats = scan(run.events_path)
        steps = [e for e in events if isinstance(e, Step)]
        assert (stats.skipped, stats.partial_tail, stats.segments) == (garbage, torn is not None, 1)
        assert stats.steps == (steps[-1].step if steps else 0)
        assert stats.method == events[0].method and stats.total_steps == (steps[-1] if steps else events[0]).total_steps
        ends = [e for e in events if e.type in ("finished", "error")]
        assert (stats.terminal.to_line() if stats.terminal else None) == (ends[-1].to_line() if ends else None)
        if torn is not None:  # the engine finishes the line: the next scan reads only that, and counts it
            with open(run.events_path, "ab") as fh:
                fh.write(torn.to_line().encode()[len(body) - body.rfind(b"\n") - 1:])
            again = scan(run.events_path)
            assert (again.skipped, again.partial_tail) == (garbage, False)
            if isinstance(torn, Step):
                assert again.steps == torn.step
            _same(list(follow_events(run, follow=False)), [*events, torn])


@st.composite
def _typed_junk(draw):
    kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
    names = sorted(f.name for f in fields(EVENT_TYPES[kind]))
    keys = st.sampled_from(names) | st.text(max_size=10)
    return kind, draw(st.dictionaries(keys, _JSONISH, max_size=6))


def _fits(value, annotation: str) -> bool:
    """Whether a JSON value may stand in a field of this annotation (null in a float field means NaN)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {"int": isinstance(value, int) and not isinstance(value, bool), "float": number or value is None,
            "float | None": number or value is None, "str": isinstance(value, str),
            "dict": isinstance(value, dict), "list": isinstance(value, list)}[annotation.split("[", 1)[0]]


@settings(deadline=None)
@given(_typed_junk())
def test_typed_objects_keep_known_fields_and_drop_unknown_ones(junk) -> None:
    kind, payload = junk
    cls = EVENT_TYPES[kind]
    if kind == "run_started":
        payload = {**payload, "protocol": PROTOCOL_VERSION}
    reader = EventReader()
    event = reader.feed(json.dumps({**payload, "type": kind}))
    annotations = {f.name: str(f.type) for f in fields(cls)}
    typed_right = all(_fits(value, annotations[name]) for name, value in payload.items() if name in annotations)
    if not typed_right:  # a known field of the wrong type: the line is skipped and counted, never half-read
        assert event is None and reader.skipped == 1
        return
    assert isinstance(event, cls) and reader.skipped == 0  # added fields never make an event unreadable
    floats = {f.name for f in fields(cls) if f.type == "float"}
    for f in fields(cls):
        value = getattr(event, f.name)
        if f.name not in payload:
            assert value == getattr(cls(ts=event.ts), f.name)
        elif f.name in floats and payload[f.name] is None:
            assert math.isnan(value)
        else:
            assert value == payload[f.name]


_WRONGLY_TYPED = [
    {"type": "step", "step": 2, "loss": "oops"},
    {"type": "step", "step": "3", "loss": 1.0},
    {"type": "step", "step": 4, "loss": 1.0, "total_steps": [10]},
    {"type": "run_started", "protocol": 1, "total_steps": "many"},
    {"type": "eval", "step": 1, "eval_loss": {"x": 1}},
    {"type": "finished", "status": "completed", "summary": [1, 2]},
    {"type": "system", "gpus": "none"},
]


@pytest.mark.parametrize("payload", _WRONGLY_TYPED, ids=lambda p: f"{p['type']}-{sorted(p)[0]}")
def test_wrongly_typed_fields_are_skipped_and_counted(payload: dict, tmp_path: Path) -> None:
    reader = EventReader()
    assert reader.feed(json.dumps(payload)) is None and reader.skipped == 1
    started = RunStarted(run_id="r", method="lora", total_steps=9).to_line()
    good = [Step(step=1, loss=2.0, total_steps=9).to_line(), Step(step=5, loss=1.0, total_steps=9).to_line()]
    (tmp_path / "events.jsonl").write_text(started + good[0] + json.dumps(payload) + "\n" + good[1])
    stats = scan(tmp_path / "events.jsonl")
    assert (stats.steps, stats.best_loss, stats.skipped, stats.total_steps) == (5, 1.0, 1, 9)
