"""Every error kind the engine raises is listed, with its meaning, in engine.errors.KINDS (read without an engine)."""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import KINDS

ENGINE = Path(__file__).resolve().parents[1] / "engine"
# EngineError("kind", ...), super().__init__("kind", ...) in its subclasses, Error(kind="kind", ...) events
RAISED = re.compile(r'(?:EngineError\(\s*|super\(\)\.__init__\(\s*|Error\(\s*kind=)"([a-z_]+)"')


def test_every_kind_the_engine_raises_is_in_kinds() -> None:
    raised = {kind for path in sorted(ENGINE.glob("*.py")) for kind in RAISED.findall(path.read_text("utf-8"))}
    assert {"config", "disk", "store", "task", "offline", "missing_package", "eval"} <= raised  # the scan sees them
    assert sorted(raised - set(KINDS)) == []
    assert all(meaning.strip() for meaning in KINDS.values())
