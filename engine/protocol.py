"""The versioned event protocol between the engine and its readers: typed events, encoder, tolerant parser.

Rules: one JSON object per line; the first event (`run_started`) carries `protocol`; a reader refuses a
protocol version it does not know; event types and fields are only ever added; an unknown type or a
garbage/truncated line is skipped and counted, never fatal. Every line is strict JSON: a non-finite float
(NaN, infinity) is written as null, and a reader turns null in a float field back into NaN.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})


@dataclass(slots=True)
class Event:
    """Base of every event; `ts` is seconds since the epoch."""

    type: ClassVar[str] = ""
    ts: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}

    def to_line(self) -> str:
        data = self.to_dict()
        try:
            return json.dumps(data, separators=(",", ":"), allow_nan=False, default=str) + "\n"
        except ValueError:  # a NaN or infinity somewhere (a diverged loss, a summary figure): null, not `NaN`
            return json.dumps(finite_json(data), separators=(",", ":"), allow_nan=False, default=str) + "\n"


def finite_json(value: Any) -> Any:
    """A copy of `value` with every non-finite float, however deeply nested, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


@dataclass(slots=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    run_id: str = ""
    method: str = ""
    base_model: str = ""
    device: str = ""
    trainable_params: int = 0
    total_params: int = 0
    train_examples: int = 0
    eval_examples: int = 0
    total_steps: int = 0
    config_hash: str = ""
    protocol: int = PROTOCOL_VERSION
    pid: int = 0
    resumed_from_step: int = 0
    nvml: str = ""
    precision: str = "fp32"
    padding_reduction: str = "off"
    truncated_examples: int = 0
    startup: dict[str, float] = field(default_factory=dict)  # seconds: interpreter, imports, model, data
    planned_peak_bytes: int = 0  # the memory planner's estimate of the peak for this run (0: no estimate)
    world_size: int = 1  # training processes (every machine's); rank 0 writes the events
    strategy: str = ""  # ddp | fsdp | deepspeed when world_size > 1
    machine_rank: int = 0  # a machine other than 0 records only its own ranks' start and end


@dataclass(slots=True)
class Step(Event):
    type: ClassVar[str] = "step"
    step: int = 0
    epoch: float = 0.0
    loss: float = 0.0
    learning_rate: float = 0.0
    grad_norm: float | None = None
    tokens_per_s: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    total_steps: int = 0
    tokens: int = 0  # cumulative real (non-padding) tokens trained on
    method_metrics: dict[str, float] = field(default_factory=dict)  # the method's own figures (AdaLoRA: rank_budget)


def add_change_points(history: dict[str, list[list[float]]], step: int, figures: dict[str, float]) -> None:
    """Fold a step's method_metrics into their history, a [step, value] point per change (the summary's form)."""
    for name, value in figures.items():
        series = history.setdefault(name, [])
        if not series or series[-1][1] != value:
            series.append([step, value])


@dataclass(slots=True)
class Eval(Event):
    type: ClassVar[str] = "eval"
    step: int = 0
    eval_loss: float = 0.0
    perplexity: float = 0.0
    tasks: dict[str, Any] = field(default_factory=dict)  # monitoring.eval_tasks: name -> {acc, acc_norm, count}


@dataclass(slots=True)
class System(Event):
    type: ClassVar[str] = "system"
    gpus: list[dict[str, Any]] = field(default_factory=list)
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    ram_used_mb: float = 0.0
    ram_total_mb: float = 0.0


@dataclass(slots=True)
class Checkpoint(Event):
    type: ClassVar[str] = "checkpoint"
    step: int = 0
    path: str = ""


@dataclass(slots=True)
class Log(Event):
    type: ClassVar[str] = "log"
    level: str = "info"
    message: str = ""


@dataclass(slots=True)
class Finished(Event):
    type: ClassVar[str] = "finished"
    status: str = "completed"  # completed | cancelled | failed
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Error(Event):
    """A training run's failure. kind: config, data, model, unsupported_hardware, oom, disk (no space left,
    read-only: the last complete checkpoint is kept), resume, diverged (NaN/infinite or spiking loss; the message
    names the step and the last good checkpoint, which is kept), distributed (a rank of a multi-process run died:
    the message names it and its log), internal; engine.errors.KINDS says what each means (and lists the kinds
    only commands raise: store, task, offline, missing_package, eval, fuse, export, run, request)."""

    type: ClassVar[str] = "error"
    kind: str = "internal"
    message: str = ""
    hint: str = ""
    traceback: str = ""


@dataclass(slots=True)
class Control(Event):
    """The engine's answer to a live control request (engine.control_requests): status "done" (a checkpoint was
    saved), "armed" (it stops after the next evaluation), "stopping" (that evaluation came: it stops now) or
    "refused" (detail says why, e.g. no evaluation is configured)."""

    type: ClassVar[str] = "control"
    request: str = ""
    action: str = ""
    status: str = ""
    step: int = 0
    detail: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (RunStarted, Step, Eval, System, Checkpoint, Log, Finished, Error, Control)
}
_FIELDS: dict[str, frozenset[str]] = {k: frozenset(f.name for f in fields(v)) for k, v in EVENT_TYPES.items()}
# Fields typed plain `float` (not `float | None`): null there (a non-finite number when written) reads as NaN.
_FLOAT_FIELDS: dict[str, tuple[str, ...]] = {
    k: tuple(f.name for f in fields(v) if f.type == "float") for k, v in EVENT_TYPES.items()
}



def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "an integer"),
    "float": (_is_number, "a number"),
    "float | None": (lambda v: v is None or _is_number(v), "a number or null"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
}
# Per event type: (field, check, what it must be), from each field's annotation.
_TYPED: dict[str, tuple[tuple[str, Callable[[Any], bool], str], ...]] = {
    k: tuple((f.name, *_TYPE_CHECKS[str(f.type).split("[", 1)[0]]) for f in fields(v)) for k, v in EVENT_TYPES.items()
}
# A stream ends with `finished` (an `error` event is always followed by `finished` with status failed).
TERMINAL_TYPES = frozenset({"finished"})


class ProtocolError(ValueError):
    """A line that is not a valid event."""


class UnsupportedProtocol(Exception):
    """The stream speaks a protocol version this reader does not know."""


def parse_event(line: str | bytes) -> Event:
    """Parse one line into its typed event; raise ProtocolError for anything else."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise ProtocolError(f"unknown event type {kind!r}")
    cls = EVENT_TYPES[kind]
    del data["type"]
    for name in _FLOAT_FIELDS[kind]:
        if name in data and data[name] is None:
            data[name] = math.nan
    for name, ok, what in _TYPED[kind]:
        if name in data and not ok(data[name]):
            raise ProtocolError(f"bad {kind} event: {name} is not {what}")
    try:
        return cls(**data)  # fast path: exactly the fields we know
    except TypeError:
        pass
    known = _FIELDS[kind]
    try:
        return cls(**{k: v for k, v in data.items() if k in known})  # a newer engine added fields
    except TypeError as exc:
        raise ProtocolError(f"bad {kind} event: {exc}") from None


@dataclass
class EventReader:
    """Parses a stream line by line, skipping and counting what it cannot use."""

    skipped: int = 0
    last_problem: str = ""
    protocol: int | None = None

    def feed(self, line: str | bytes) -> Event | None:
        if not line.strip():
            return None
        try:
            event = parse_event(line)
        except ProtocolError as exc:
            self.skipped += 1
            self.last_problem = str(exc)
            return None
        if isinstance(event, RunStarted):
            if event.protocol not in SUPPORTED_VERSIONS:
                raise UnsupportedProtocol(
                    f"the engine speaks event protocol {event.protocol}; this lf-tui reads "
                    f"{sorted(SUPPORTED_VERSIONS)}: upgrade lf-tui"
                )
            self.protocol = event.protocol
        return event

    def feed_all(self, lines: Iterable[str | bytes]) -> Iterator[Event]:
        for line in lines:
            event = self.feed(line)
            if event is not None:
                yield event
