"""Short run names match run ids without a run store (engine/run_names.py is plain string matching)."""

from __future__ import annotations

from engine.run_names import matching_names

NAMES = ["20260101-184554-lora-c371", "20260101-184554-dora-d482", "20260102-090000-qlora-c371"]


def test_ids_prefixes_tails_and_times_match_as_the_app_shows_them() -> None:
    assert matching_names(NAMES, NAMES[0]) == [NAMES[0]]
    assert matching_names(NAMES, "20260101-184554") == NAMES[:2]  # ambiguous: both, for the caller to list
    assert matching_names(NAMES, "lora-c371") == [NAMES[0]]
    assert matching_names(NAMES, "c371") == [NAMES[0], NAMES[2]]
    assert matching_names(NAMES, "184554-c371") == [NAMES[0]]
    assert matching_names(NAMES, "qlora 090000-c371") == [NAMES[2]]
    assert matching_names(NAMES, "dora 184554-c371") == []
    assert matching_names(NAMES, "nothing") == []
