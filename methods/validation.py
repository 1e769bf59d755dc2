"""Validates a config in either shape against its method: errors, warnings, migration, defaults."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from methods.catalogue import Catalogue, get_catalogue
from methods.config_models import MethodConfigBase
from methods.distributed_rules import check_distributed
from methods.json_locate import join_path, locate_paths
from methods.migrations import MigrationError, migrate
from methods.report import Report
from methods.secrets import REDACTED, is_secret_key
from methods.tracker_extras import tracker_warnings


@dataclass
class Resolved:
    """A validated config: the report, the typed model (when valid) and the dicts behind it."""

    report: Report
    config: MethodConfigBase | None = None
    resolved: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    nested: bool = True

    def upgraded_document(self) -> dict[str, Any]:
        """The user's config after migration, in the shape the user wrote it."""
        if self.nested:
            return {"method_config": self.user}
        flat = dict(self.user)
        if "method_name" in flat:
            flat = {"method": flat.pop("method_name"), **flat}
        return flat


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Values of `override` win; nested dicts merge; lists and scalars replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def split_shape(document: Any, report: Report, lenient: bool = False) -> tuple[dict[str, Any] | None, bool]:
    """Return the method_config dict of either shape, and whether the document was nested (ACCEPTED_TOP_LEVEL keys,
    such as the `$schema` editors read, are accepted in both shapes)."""
    if not isinstance(document, dict):
        report.error("", f"a config must be a JSON object, got {type(document).__name__}",
                     hint='start with {"method_config": {...}} or {"method": "lora", ...}')
        return None, True
    document = {k: v for k, v in document.items() if k not in ACCEPTED_TOP_LEVEL}
    if "method_config" in document:
        for extra in document:
            if extra != "method_config":
                add = report.warn if lenient else report.error
                add(extra, "unknown top-level key" + (" is ignored" if lenient else ""),
                    hint="everything goes inside method_config")
        inner = document["method_config"]
        if not isinstance(inner, dict):
            report.error("", f"method_config must be an object, got {type(inner).__name__}")
            return None, True
        return copy.deepcopy(inner), True
    flat = copy.deepcopy(document)
    if "method" in flat:
        method = flat.pop("method")
        if "method_name" in flat and flat["method_name"] != method:
            report.error("method_name", f"'method' says {method!r} but 'method_name' says {flat['method_name']!r}")
        flat.setdefault("method_name", method)
    return flat, False


def validate_config(document: Any, method: str | None = None, text: str | None = None,
                    source: str | None = None, catalogue: Catalogue | None = None, lenient: bool = False) -> Resolved:
    """Validate a parsed config document; `method` is the one named on the command line, if any. An unknown key is
    an error (a misspelt or foreign key would otherwise drop what the user meant); `lenient` makes it a warning
    (`lf-tui validate-config --lenient`, for a config that is only read)."""
    catalogue = catalogue or get_catalogue()
    report = Report(source=source)
    cfg, nested = split_shape(document, report, lenient)
    resolved = Resolved(report, nested=nested)
    if cfg is None:
        return _placed(resolved, text)
    try:
        cfg, report.migrated_from, report.migration_notes = migrate(cfg)
    except MigrationError as exc:
        report.error("version", str(exc), cfg.get("version"))
        return _placed(resolved, text)
    resolved.user = cfg
    name = _method_name(cfg, method, catalogue, report)
    if name is None:
        return _placed(resolved, text)
    report.method = name
    spec = catalogue.get(name)
    merged = deep_merge(spec.defaults().get("method_config", {}), cfg)
    merged["method_name"] = name
    resolved.resolved = merged
    try:
        resolved.config = spec.config_model.model_validate(merged)
    except ValidationError as exc:
        for err in exc.errors():
            _add_pydantic_error(report, spec.config_model, err)
    _unknown_keys(report, spec.config_model, cfg, "", lenient)
    if resolved.config is not None:
        _rule_warnings(report, resolved.config, spec.info.lr_range, spec.info.title)
        check_distributed(report, resolved.config)
        for finding in spec.check(resolved.config):  # the method's own rules, from its folder's spec
            add = report.error if finding.severity == "error" else report.warn
            add(finding.path, finding.message, finding.value, finding.hint)
    if report.errors:
        resolved.config = None
    return _placed(resolved, text)


def _placed(resolved: Resolved, text: str | None) -> Resolved:
    if text is not None:
        resolved.report.place(locate_paths(text), resolved.nested)
    return resolved


def _method_name(cfg: dict[str, Any], cli: str | None, catalogue: Catalogue, report: Report) -> str | None:
    in_file = cfg.get("method_name")
    if in_file is not None and not isinstance(in_file, str):
        report.error("method_name", f"{in_file!r} is not a method name", in_file, ", ".join(catalogue.names()))
        return None
    if cli and in_file and cli != in_file:
        report.error("method_name", f"the file says {in_file!r} but --method says {cli!r}", in_file,
                     f"drop --method or set method_name to {cli!r}")
        return None
    name = cli or in_file
    if not name:
        report.error("method_name", "no method given", hint=f"add \"method\": one of {', '.join(catalogue.names())}")
        return None
    if name not in catalogue:
        close = difflib.get_close_matches(name, catalogue.names(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(catalogue.names())}"
        report.error("method_name", f"unknown method {name!r}", name, hint)
        return None
    return name


def _field_info(model: type[BaseModel], loc: tuple[Any, ...]):
    """The pydantic FieldInfo at `loc`, following nested models; None when not found."""
    info = None
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = info.annotation
    return info


def _add_pydantic_error(report: Report, model: type[BaseModel], err: ErrorDetails) -> None:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith(("function-", "constrained-")))))
    path = ""
    for part in loc:
        path = join_path(path, part)
    info = _field_info(model, loc)
    hint = info.description if info is not None and info.description else ""
    value, ctx, kind = err.get("input"), err.get("ctx") or {}, err["type"]
    messages = {
        "less_than_equal": lambda: f"{value!r} is above the maximum {ctx.get('le')}",
        "less_than": lambda: f"{value!r} must be below {ctx.get('lt')}",
        "greater_than_equal": lambda: f"{value!r} is below the minimum {ctx.get('ge')}",
        "greater_than": lambda: f"{value!r} must be above {ctx.get('gt')}",
        "literal_error": lambda: f"{value!r} is not one of {ctx.get('expected')}",
        "missing": lambda: "is required",
        "too_short": lambda: f"{value!r} is too short (at least {ctx.get('min_length')})",
        "string_pattern_mismatch": lambda: f"{value!r} is not a valid value",
        "string_too_short": lambda: f"{value!r} is too short (at least {ctx.get('min_length')} character)",
        "value_error": lambda: str(ctx.get("error") or err["msg"]),  # a validator's own words (they name the value)
    }
    message = messages.get(kind, lambda: f"{value!r}: {err['msg'][0].lower()}{err['msg'][1:]}")()
    if any(e.path == path for e in report.errors):
        return  # unions report one failure per branch; the first says enough
    report.error(path, message, value, hint)


# Top-level keys the validator accepts without a field: the JSON schema an editor reads, and the recipe `lf-tui fuse`
# records in a fused run's config.json (engine/fuse.py: export, generate and serve read that config again).
ACCEPTED_TOP_LEVEL = frozenset({"$schema", "fusion"})
# Other tools' spellings (LLaMA-Factory's, Hugging Face's TrainingArguments) and what this config says instead.
FOREIGN_KEYS = {
    "stage": "lf-tui trains supervised fine-tuning (SFT) only, there is no stage; DPO/KTO data needs another trainer",
    "finetuning_type": "method_name picks the method (lora, qlora, full_finetune, ...)",
    "model_name_or_path": "write it as base_model",
    "lora_rank": "write it as method_specific.r",
    "num_train_epochs": "write it as training.epochs",
    "per_device_train_batch_size": "write it as training.batch_size",
    "cutoff_len": "write it as training.max_seq_length",
}


def _unknown_keys(report: Report, model: type[BaseModel], data: Any, path: str, lenient: bool = False) -> None:
    """Every key of `data` that `model` has no field for: an error (a warning when `lenient`), with the closest
    known key, the spelling this config uses for another tool's key, or the known keys as its hint."""
    if not isinstance(data, dict):
        return
    fields = model.model_fields
    add = report.warn if lenient else report.error
    for key, value in data.items():
        child = join_path(path, key)
        if key in ACCEPTED_TOP_LEVEL and not path:
            continue
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            if is_secret_key(key):
                hint = "a secret does not belong in a config file: set it in the environment (HF_TOKEN, " \
                       "WANDB_API_KEY) and remove it here"
            elif key in FOREIGN_KEYS:
                hint = FOREIGN_KEYS[str(key)]
            else:
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(fields)}"
            add(child, "unknown key" + (" is ignored" if lenient else ""),
                REDACTED if is_secret_key(key) and value else value, hint)
            continue
        annotation = fields[key].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _unknown_keys(report, annotation, value, child, lenient)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")


def model_size_billions(name: str) -> float | None:
    """Parse the parameter count a model id states, e.g. 'Llama-2-70b-hf' -> 70.0."""
    match = _SIZE.search(name)
    return float(match.group(1)) if match else None


def _rule_warnings(report: Report, cfg: MethodConfigBase, lr_range: tuple[float, float], title: str) -> None:
    """The rules every method shares (a method's own rules are in its spec: Method.check)."""
    lo, hi = lr_range
    lr = cfg.training.learning_rate
    if lr < lo / 3 or lr > hi * 3:
        report.warn("training.learning_rate", f"{lr:g} is far outside {title}'s usual range {lo:g}-{hi:g}", lr,
                    "too high diverges, too low barely moves")
    _monitoring_warnings(report, cfg)
    if cfg.trust_remote_code:
        report.warn("trust_remote_code", "is on: the model's own Python code will run", True,
                    "only for checkpoints you trust")


def _monitoring_warnings(report: Report, cfg: MethodConfigBase) -> None:
    """Settings of early stopping, best-weights keeping and the loss-spike stop that cannot do what they say."""
    mon, data = cfg.monitoring, cfg.data
    no_eval_data = data.eval_split == 0 and not data.eval_path
    if mon.early_stopping_patience and (mon.eval_steps == 0 or no_eval_data):
        why = "monitoring.eval_steps is 0" if mon.eval_steps == 0 else "there is no evaluation data"
        report.warn("monitoring.early_stopping_patience", f"early stopping counts evaluations, but {why}",
                    mon.early_stopping_patience, "set monitoring.eval_steps and data.eval_split (or data.eval_path)")
    if mon.eval_steps and mon.save_steps == 0 and not no_eval_data:
        report.warn("monitoring.save_steps", "is 0: the best-eval weights cannot be kept, weights/ gets the final ones",
                    0, "set save_steps > 0 to keep the best checkpoint (monitoring.save_total_limit bounds the disk use)")
    if 0 < mon.loss_spike_factor <= 1:
        report.warn("monitoring.loss_spike_factor", f"{mon.loss_spike_factor:g} stops at any step whose loss is above "
                    "the recent average", mon.loss_spike_factor, "3 to 10 stops real spikes only; 0 disables the check")
    for path, message, value, hint in tracker_warnings(mon):  # a tracker asked for whose package is not installed
        report.warn(path, message, value, hint)
