"""The event protocol: round trips, tolerant parsing, version refusal."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.protocol import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    EventReader,
    Finished,
    RunStarted,
    Step,
    UnsupportedProtocol,
    parse_event,
)


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


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    reader = EventReader()
    for line in data.split(b"\n"):
        try:
            reader.feed(line)
        except UnsupportedProtocol:
            pass


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=10),
                                                       st.floats(allow_nan=False)), max_size=6),
       st.sampled_from(sorted(EVENT_TYPES)))
def test_typed_junk_objects_are_skipped_or_parsed(payload: dict, kind: str) -> None:
    reader = EventReader()
    try:
        reader.feed(json.dumps({**payload, "type": kind}))
    except UnsupportedProtocol:
        pass
