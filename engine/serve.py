"""`python -m engine.serve`: a serving process that loads each base model once and many runs' trained weights on it.

Protocol (version 1), like the training engine's: one JSON object a line, requests on stdin, events on stdout
(library chatter goes to stderr). The first event is {"type": "ready", "protocol": 1}. Requests:

- {"type": "load", "runs": [run folder, ...]}: one {"type": "loaded", "run": id, ...} event per run, or
  {"type": "error", "run": id, "kind", "error", "hint"} for a run that cannot be served; then {"type": "done"}.
- {"type": "generate", "prompt": str, "targets": ["base" | run id, ...], "max_new_tokens": 32, "temperature": 0,
  "top_p": 1.0, "seed": 0}: one {"type": "answer", "target", "text", "swap_s", "first_token_s", "tokens_per_s",
  "new_tokens", ...} event per target (an answer that failed carries "error", "kind" and "hint" instead of the
  text), then {"type": "done"}. temperature 0 is greedy (reproducible, the same as `python -m engine generate`);
  above 0 it samples with top_p, seeded by `seed` (the same seed gives the same text).
- {"type": "quit"} (or the end of stdin): the process exits 0.
A request may carry "id"; its events echo it.

How runs share weights:
- A base model is loaded once per (base_model, weight dtype, device, loader): runs on the same base with the
  default loader share it, whatever their method. A run on another base model is not refused: its base is loaded
  beside the first (`bases_loaded` in each loaded event counts the loads). A method that loads its base itself
  (QLoRA's 4-bit base: load_model overridden) gets a base of its own.
- PEFT adapters (LoRA and its variants, QLoRA, AdaLoRA, IA3, prefix tuning) go through PEFT's multi-adapter API:
  the first run of a PEFT type on a base with PeftModel.from_pretrained(adapter_name=run id), the next ones with
  load_adapter, switched per request with set_adapter (`swap_s`). PEFT keeps one tuner type per PeftModel (it
  cannot hold LoRA and IA3, or prompt learning and LoRA, at once), so each PEFT type has its own PeftModel, built
  on a module tree that shares the base's weight tensors (no second copy of the weights, no second load).
- The in-house bottleneck adapters are inserted into their own such tree (one per run, the base weights shared).
- A full fine-tune is a different model, not an adapter: it is loaded separately as its own model (its answers say
  "separate_model": true).
- The "base" target answers from the plain base (no adapter in its modules), once per base model: from its base
  loaded with the default loader (else from the one a method loaded itself), preferring the one adapters run on to
  one loaded in another dtype only for full fine-tunes, prompted in the data format of the first run loaded on it.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from engine.errors import EngineError
from engine.generate import format_prompt, trained_weights
from engine.generation_timing import PARTIAL_EVERY_S, complete
from engine.models import base_weight_dtype, load_tokenizer, resolve_runtime
from engine.run_store import RunDir
from engine.runner import EngineContext, load_run_config, place
from methods.catalogue import get_catalogue
from methods.contract import MethodImplementation

PROTOCOL_VERSION = 1
FULL_MODEL_NOTE = "a full fine-tune is its own model (all weights trained), loaded separately, not an adapter"


@dataclass
class Base:
    key: tuple[Any, ...]
    base_model: str
    loader: str  # "default", or the method whose load_model loads it (qlora)
    model: Any
    tokenizer: Any
    runtime: Any
    data_format: str
    peft_models: dict[str, Any] = field(default_factory=dict)  # PEFT type -> its PeftModel on this base
    adapters: int = 0  # runs served on this base's weights (not full fine-tunes, which are models of their own)


@dataclass
class Served:
    run_id: str
    method: str
    base: Base
    model: Any
    impl: MethodImplementation | None  # its generate hook (None: plain model.generate)
    data_format: str
    adapter: str | None = None  # the PEFT adapter name to switch to
    separate_model: bool = False
    kind: str = ""  # peft:<TYPE> | bottleneck | full model


def shared_clone(model: Any) -> Any:
    """A copy of `model`'s module tree whose parameters and buffers are the same tensors (no copy of the weights):
    PEFT and the bottleneck adapters insert their modules into it, the original stays plain."""
    memo: dict[int, Any] = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    return copy.deepcopy(model, memo)


def peft_type(folder: Path) -> str | None:
    config = folder / "adapter_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("peft_type")
    return str(value) if value else None


def _quiet_peft() -> None:
    warnings.filterwarnings("ignore", message=r".*LoRA tensor\(s\) have invalid shape.*")
    warnings.filterwarnings("ignore", message=r".*rank_pattern keys did not match any targeted module.*")


class Server:
    def __init__(self) -> None:
        self.bases: dict[tuple[Any, ...], Base] = {}
        self.served: dict[str, Served] = {}
        self.bases_loaded = 0
        self.models_loaded = 0  # separate full models (full fine-tunes)
        self.partial_every_s = PARTIAL_EVERY_S

    # loading
    def _base(self, cfg: Any, runtime: Any, impl: MethodImplementation, ctx: EngineContext,
              data_format: str) -> Base:
        own_loader = type(impl).load_model is not MethodImplementation.load_model
        dtype = base_weight_dtype(impl.trains_base_weights, runtime, cfg.hardware.pure_bf16)
        loader = cfg.method_name if own_loader else "default"
        key = (cfg.base_model, cfg.trust_remote_code, str(runtime.device), str(dtype), loader)
        if key not in self.bases:
            model = impl.load_model(cfg, ctx)
            place(model, impl, runtime)
            model.eval()
            self.bases[key] = Base(key, cfg.base_model, loader, model, load_tokenizer(cfg), runtime, data_format)
            self.bases_loaded += 1
        return self.bases[key]

    def load(self, path: str) -> dict[str, Any]:
        started = time.perf_counter()
        run = RunDir(Path(path))
        if not run.path.is_dir():
            raise EngineError("run", f"{path}: no such run folder")
        if run.run_id in self.served:
            return self._loaded(self.served[run.run_id], started, reused=True)
        cfg = load_run_config(run)
        folder = trained_weights(run)
        runtime = resolve_runtime(cfg)
        impl = get_catalogue().get(cfg.method_name).implementation()
        ctx = EngineContext(cfg, runtime, lambda level, msg: None)
        data_format = (run.summary() or {}).get("data_format", "alpaca")
        base = self._base(cfg, runtime, impl, ctx, data_format)
        kind = peft_type(folder)
        if kind is not None:
            served = self._load_peft(run, cfg, impl, base, folder, kind, data_format)
        elif (folder / "config.json").is_file():  # full weights: a model of its own
            model = impl.load_trained(base.model, folder, ctx)
            if model is base.model:
                raise EngineError("internal", f"{run.path}: the method reloaded its weights into the shared base")
            place(model, impl, runtime)
            self.models_loaded += 1
            served = Served(run.run_id, cfg.method_name, base, model.eval(), impl, data_format,
                            separate_model=True, kind="full model")
        else:  # the in-house bottleneck adapters (or any method that inserts modules of its own)
            model = impl.load_trained(shared_clone(base.model), folder, ctx)
            place(model, impl, runtime)
            served = Served(run.run_id, cfg.method_name, base, model.eval(), impl, data_format, kind="bottleneck")
        self.served[run.run_id] = served
        base.adapters += not served.separate_model
        return self._loaded(served, started)

    def _load_peft(self, run: RunDir, cfg: Any, impl: MethodImplementation, base: Base, folder: Path, kind: str,
                   data_format: str) -> Served:
        from peft import PeftModel

        with warnings.catch_warnings():
            _quiet_peft()
            model = base.peft_models.get(kind)
            if model is None:
                model = PeftModel.from_pretrained(shared_clone(base.model), str(folder), adapter_name=run.run_id)
                base.peft_models[kind] = model
            else:
                model.load_adapter(str(folder), adapter_name=run.run_id)
        place(model, impl, base.runtime)
        model.eval()
        return Served(run.run_id, cfg.method_name, base, model, impl, data_format, adapter=run.run_id,
                      kind=f"peft:{kind}")

    def _loaded(self, served: Served, started: float, reused: bool = False) -> dict[str, Any]:
        event = {"type": "loaded", "run": served.run_id, "method": served.method, "base_model": served.base.base_model,
                 "loader": served.base.loader, "kind": served.kind, "separate_model": served.separate_model,
                 "load_s": time.perf_counter() - started, "bases_loaded": self.bases_loaded,
                 "models_loaded": self.models_loaded}
        if served.separate_model:
            event["note"] = FULL_MODEL_NOTE
        if reused:
            event["reused"] = True
        return event

    # generating
    def base_targets(self) -> list[Base]:
        """The bases the "base" target answers from: one per base model, loaded with the default loader if any
        was, the one adapters run on before one loaded only for full fine-tunes (in their own dtype: fp32 master
        weights on a GPU)."""
        default = [b for b in self.bases.values() if b.loader == "default"]
        chosen: dict[tuple[str, Any], Base] = {}
        for base in sorted(default or self.bases.values(), key=lambda b: b.adapters == 0):
            chosen.setdefault((base.base_model, base.key[1]), base)
        return list(chosen.values())

    def answers(self, request: dict[str, Any], emit: Callable[[dict[str, Any]], None] | None = None
                ) -> list[dict[str, Any]]:
        """The answers to a generate request, each also sent through `emit` when it is ready (and, with "stream"
        in the request, partial events while it is generated)."""
        stream = emit if request.get("stream") else None
        self.partial_every_s = float(request.get("partial_every_s", PARTIAL_EVERY_S))
        prompt = str(request.get("prompt", ""))
        settings = {"max_new_tokens": int(request.get("max_new_tokens", 32)),
                    "temperature": float(request.get("temperature", 0.0) or 0.0),
                    "top_p": float(request.get("top_p", 1.0) or 1.0), "seed": int(request.get("seed", 0) or 0)}
        out: list[dict[str, Any]] = []
        for target in request.get("targets") or []:
            if target == "base":
                if not self.bases:
                    out.append(_failed("base", EngineError("request", "no base model loaded",
                                                           "load a run first: the base is the runs' base model")))
                    _send(emit, out[-1])
                for base in self.base_targets():
                    out.append(self._answer("base", prompt, settings, base=base, stream=stream))
                    _send(emit, out[-1])
                continue
            out.append(self._answer(str(target), prompt, settings, stream=stream))
            _send(emit, out[-1])
        return out

    def _answer(self, target: str, prompt: str, settings: dict[str, Any], base: Base | None = None,
                stream: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        try:
            served = self.served.get(target) if base is None else None
            if base is None and served is None:
                raise EngineError("request", f"run {target!r} is not loaded", "send a load request with its folder")
            started = time.perf_counter()
            if served is not None and served.adapter is not None and served.model.active_adapter != served.adapter:
                served.model.set_adapter(served.adapter)
            swap_s = time.perf_counter() - started
            if served is not None:
                base = served.base
                model, impl, data_format = served.model, served.impl, served.data_format
            else:
                assert base is not None
                model, impl, data_format = base.model, None, base.data_format
            text = format_prompt(base.tokenizer, prompt, data_format)
            on_text = None
            if stream is not None:
                def on_text(so_far: str, tokens: int, base_model: str = base.base_model) -> None:
                    stream({"type": "partial", "target": target, "base_model": base_model, "text": so_far,
                            "new_tokens": tokens})
            answer = complete(model, impl, base.tokenizer, base.runtime, text, on_text=on_text,
                              partial_every_s=self.partial_every_s, **settings)
        except EngineError as exc:
            return _failed(target, exc)
        except Exception as exc:  # reported per answer, never a traceback
            return _failed(target, _internal(exc))
        event = {"type": "answer", "target": target, "base_model": base.base_model, "swap_s": swap_s, **answer}
        if served is not None:
            event.update(method=served.method, kind=served.kind, separate_model=served.separate_model)
            if served.separate_model:
                event["note"] = FULL_MODEL_NOTE
        else:
            event.update(method=None, kind="base", separate_model=False, loader=base.loader)
        return event


def _internal(exc: Exception) -> EngineError:
    oom = "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"
    return EngineError("oom" if oom else "internal", f"{type(exc).__name__}: {str(exc)[:500]}",
                       "serve fewer runs at once" if oom else "this looks like a bug")


def _send(emit: Callable[[dict[str, Any]], None] | None, event: dict[str, Any]) -> None:
    if emit is not None:
        emit(event)


def _failed(target: str, exc: EngineError) -> dict[str, Any]:
    return {"type": "answer", "target": target, "error": exc.message, "kind": exc.kind, "hint": exc.hint}


def handle(server: Server, request: Any, emit: Any) -> bool:
    """Answer one request through `emit(event)`; False when the process should exit."""
    if not isinstance(request, dict):
        emit({"type": "error", "kind": "request", "error": "a request is a JSON object", "hint": ""})
        return True
    kind = request.get("type")
    echo = {"id": request["id"]} if "id" in request else {}
    if request.get("protocol", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        emit({"type": "error", "kind": "protocol", "error": f"protocol {request.get('protocol')!r} not supported",
              "hint": f"this server speaks protocol {PROTOCOL_VERSION}", **echo})
        return True
    if kind == "quit":
        return False
    if kind == "load":
        for path in request.get("runs") or []:
            try:
                emit({**server.load(str(path)), **echo})
            except EngineError as exc:
                emit({"type": "error", "run": Path(str(path)).name, "kind": exc.kind, "error": exc.message,
                      "hint": exc.hint, **echo})
            except Exception as exc:
                err = _internal(exc)
                emit({"type": "error", "run": Path(str(path)).name, "kind": err.kind, "error": err.message,
                      "hint": err.hint, **echo})
        emit({"type": "done", "request": "load", "bases_loaded": server.bases_loaded,
              "models_loaded": server.models_loaded, **echo})
        return True
    if kind == "generate":
        server.answers(request, lambda event: emit({**event, **echo}))
        emit({"type": "done", "request": "generate", **echo})
        return True
    emit({"type": "error", "kind": "request", "error": f"unknown request type {kind!r}",
          "hint": "load, generate or quit", **echo})
    return True


def serve(requests: TextIO, events: TextIO) -> int:
    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps({**event, "ts": time.time()}, default=str) + "\n")
        events.flush()

    server = Server()
    emit({"type": "ready", "protocol": PROTOCOL_VERSION, "pid": os.getpid()})
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError:
            emit({"type": "error", "kind": "request", "error": "not a JSON line", "hint": line[:80]})
            continue
        if not handle(server, request, emit):
            break
    return 0


def main() -> int:
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library chatter (print, warnings) goes to stderr; stdout carries only events
    return serve(sys.stdin, real_stdout)


if __name__ == "__main__":
    sys.exit(main())
