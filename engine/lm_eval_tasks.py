"""lm-eval's named benchmarks for `lf-tui eval`: each name checked and its data set loaded before any model loads
(an unknown name, or a data set this machine cannot download, said plainly), then scored by lm-eval itself."""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
from typing import Any

from engine.errors import EngineError

LM_EVAL_HINT = (f"install it into lf-tui's environment (`{sys.executable} -m pip install lm-eval`); or give a "
                "local JSONL file of questions (context or question, choices, answer), or `--tasks sample` for the "
                "bundled one")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
LOCAL_HINT = ("give a local JSONL file of questions (a path ending in .jsonl or .json), or `--tasks sample` for the "
              "bundled one")


def offline() -> bool:
    """Whether lm-eval's data sets stay offline, by the datasets library's own rule (engine.planning.hub_offline)."""
    from engine.planning import hub_offline

    return hub_offline(datasets=True)


def offline_unless_reachable() -> bool:
    """Offline mode for this process when the hub cannot be reached, so a data set not cached fails at once instead
    of retrying for half a minute (call it before the Hugging Face libraries are imported). True when offline."""
    from engine.planning import hub_reachable

    if offline():
        return True
    if hub_reachable():
        return False
    for name in OFFLINE_VARS:
        os.environ[name] = "1"
    return True


def _manager() -> Any:
    if importlib.util.find_spec("lm_eval") is None:
        return None
    from lm_eval.tasks import TaskManager

    return TaskManager()


def _unknown(name: str, known: list[str]) -> EngineError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    also = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return EngineError("task", f"unknown task {name!r}: it is not a task file, nor a task or group that lm-eval "
                       "knows", f"{also}`lm-eval ls tasks` lists lm-eval's names; or {LOCAL_HINT}")


def _built(loaded: dict[str, Any], name: str) -> list[Any]:
    """The objects lm-eval built for `name`: its group, its task, or (a tag) every task it names."""
    if name in loaded.get("groups", {}):
        return [loaded["groups"][name]]
    if name in loaded.get("tasks", {}):
        return [loaded["tasks"][name]]
    return list(loaded.get("tasks", {}).values())


def resolve(names: list[str]) -> tuple[Any, dict[str, list[Any]]]:
    """(lm-eval's task manager, each name's loaded tasks, their data read now): nothing of a model loads before."""
    if not names:
        return None, {}
    manager = _manager()
    if manager is None:
        raise EngineError("missing_package", f"{names[0]!r} is not a task file, and the lm-eval package that runs "
                          "named benchmarks (hellaswag, mmlu, arc_easy...) is not installed", LM_EVAL_HINT)
    known = list(manager.all_tasks)
    for name in names:
        if name not in manager.all_tasks:
            raise _unknown(name, known)
    out: dict[str, list[Any]] = {}
    for name in names:
        try:
            out[name] = _built(manager.load([name]), name)
        except Exception as exc:
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            if offline():
                raise EngineError("offline", f"lm-eval task {name!r} needs its data set from the Hugging Face hub, "
                                  "and this machine is offline (the hub cannot be reached, or HF_HUB_OFFLINE is "
                                  f"set) and has no copy in its cache: {first}",
                                  f"run it once where the hub is reachable (the data set is then cached), or "
                                  f"{LOCAL_HINT}") from None
            raise EngineError("task", f"lm-eval cannot load task {name!r}: {type(exc).__name__}: {first}",
                              LOCAL_HINT) from None
    return manager, out


def score(model: Any, tokenizer: Any, name: str, built: list[Any], manager: Any, batch_rows: int,
          limit: int | None) -> dict[str, Any]:
    """One lm-eval task run on the loaded model (its own prompts, metrics and counts)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_rows)  # on the device it was loaded to
    out = simple_evaluate(model=lm, tasks=built, task_manager=manager, limit=limit)
    metrics = (out or {}).get("results", {}).get(name)
    if not metrics:
        raise EngineError("eval", f"lm-eval returned no results for task {name!r}", "check the task name: "
                          "`lm-eval ls tasks` lists them")
    count = ((out or {}).get("n-samples", {}).get(name) or {}).get("effective")
    result: dict[str, Any] = {"count": count}
    for metric in ("acc", "acc_norm"):
        value = metrics.get(f"{metric},none", metrics.get(metric))
        if isinstance(value, (int, float)):
            result[metric] = float(value)
            if isinstance(count, int):
                result["correct" if metric == "acc" else "correct_norm"] = round(float(value) * count)
    return result
