"""Turns a config file or a method's defaults into a new run folder (shared by the CLI and the TUI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.run_store import RunDir, RunStore, StoreWriteError
from methods.catalogue import get_catalogue
from methods.config_file import ConfigInputError, read_config_file
from methods.config_paths import resolve_config_paths
from methods.validation import Resolved, validate_config


class RunSetupError(Exception):
    """The run cannot be set up; exit_code 2 is unusable input."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def _with_overrides(document: Any, max_steps: int | None) -> Any:
    if max_steps is None or not isinstance(document, dict):
        return document
    inner = document.get("method_config", document)
    if isinstance(inner, dict):
        training = inner.setdefault("training", {})
        if isinstance(training, dict):
            training["max_steps"] = max_steps
    return document


def config_for_train(path: str, method: str | None, max_steps: int | None = None) -> Resolved:
    try:
        text, document = read_config_file(path)
    except ConfigInputError as exc:
        raise RunSetupError(str(exc)) from None
    return validate_config(_with_overrides(document, max_steps), method=method, text=text, source=path)


def config_for_quick_train(method: str, base_model: str, max_steps: int | None = None) -> tuple[Resolved, str]:
    """The method's defaults on `base_model`; on the built-in model, the method's demo learning rate."""
    document: dict[str, Any] = {"method": method, "base_model": base_model, "training": {}}
    note = ""
    catalogue = get_catalogue()
    if method in catalogue and base_model.startswith("builtin:"):
        lr = catalogue.get(method).info.demo_learning_rate
        if lr:
            document["training"]["learning_rate"] = lr
            note = f"using learning rate {lr:g}, tuned for the built-in demo model"
    return validate_config(_with_overrides(document, max_steps)), note


def model_refusal(base_model: str, base_dir: Path) -> str | None:
    """Why a hub id base model cannot load (not in the Hugging Face cache, and offline or the hub unreachable), in
    the planner's words, or None; built-in models and local folders are never refused here (the engine says more)."""
    from engine.planning import PlanError, hub_config  # the planner's lookup: cache, HF_HUB_OFFLINE, reachability
    from methods.config_paths import looks_local

    if not base_model or base_model.startswith("builtin:") or "://" in base_model or looks_local(base_model, base_dir) \
            or Path(base_model).is_absolute() or base_model.count("/") > 1:
        return None
    try:
        hub_config(base_model)  # not model_config: its bundled reference shapes size a model, they do not load it
    except PlanError as exc:
        gated = "; gated models need HF_TOKEN" if "HF_TOKEN" in exc.hint else ""
        return (f"base_model {exc.message}: download it where the hub is reachable (`hf download {base_model}`) or "
                f"give a local model folder{gated}")
    return None


def _local_dataset(value: str) -> str:
    """A dataset named on the command line or in a form: an existing path made absolute; a hub id stays."""
    p = Path(value).expanduser()
    if p.exists():
        return str(p.resolve())
    if value.endswith((".jsonl", ".json", ".csv", ".parquet")) or value.startswith((".", "/", "~")):
        raise RunSetupError(f"{value}: no such dataset file")
    return value


def create_run(store: RunStore, config: Any, dataset: str | None, eval_dataset: str | None,
               config_dir: str | Path | None = None) -> RunDir:
    """A new run folder holding the resolved config and where its data lives (absolute paths).

    Relative paths inside the config resolve against `config_dir` (the config file's folder; the working
    directory when there is no file); `dataset`/`eval_dataset` come from the command line or a form and
    resolve against the working directory. Before the folder exists, refused with RunSetupError (one sentence:
    what, where, the fix): a store that cannot be written, a local data file the engine would refuse (its first
    records are read), a hub base model neither cached nor reachable.
    """
    refusal = store.writable_refusal()
    if refusal:
        raise RunSetupError(refusal)
    base_dir = Path(config_dir) if config_dir is not None else Path.cwd()
    config = resolve_config_paths(config, base_dir)
    meta: dict[str, Any] = {"trust_remote_code": config.trust_remote_code}
    for key, value in (("dataset", dataset), ("eval_dataset", eval_dataset)):
        meta[key] = _local_dataset(value) if value else value
    from engine.data_check import data_refusal

    refusal = data_refusal(meta["dataset"], meta["eval_dataset"] or config.data.eval_path, config.data) \
        or model_refusal(config.base_model, base_dir)
    if refusal:
        raise RunSetupError(refusal)
    try:
        return store.create(config.method_name, config.model_dump(mode="json"), meta)
    except StoreWriteError as exc:  # the disk filled (or the folder turned read-only) since the check
        raise RunSetupError(str(exc)) from None
