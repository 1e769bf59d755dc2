"""The external trackers' optional extras: which one a monitoring setting needs, and the one line that says so."""

from __future__ import annotations

import importlib.util
import netrc
import os
from typing import Any

# setting -> (the package it needs, the lf-tui extra that installs it)
TRACKERS = {"tensorboard_log_dir": ("tensorboard", "tensorboard"), "wandb_project": ("wandb", "wandb")}


def install_hint(extra: str) -> str:
    """The command that installs an extra, quoted for every shell."""
    return f"pip install 'lf-tui[{extra}]'"


def installed(package: str) -> bool:
    """Whether `package` can be imported here (found, not imported: no heavy import to ask)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken or blocked package
        return False


def missing_message(setting: str) -> str:
    """`monitoring.<setting>` is set but its package is absent: what is skipped and how to get it."""
    package, extra = TRACKERS[setting]
    return f"monitoring.{setting} is set but {package} is not installed, so the run logs nothing there: " \
           f"{install_hint(extra)}"


def wandb_configured(environ: Any = None) -> bool:
    """W&B can start without asking: an API key (the environment or `wandb login`'s netrc) or an offline mode."""
    env = os.environ if environ is None else environ
    if env.get("WANDB_API_KEY") or env.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        return True
    host = (env.get("WANDB_BASE_URL") or "https://api.wandb.ai").split("://")[-1].split("/")[0].split(":")[0]
    try:
        return netrc.netrc(env.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def tracker_warnings(monitoring: Any) -> list[tuple[str, str, Any, str]]:
    """(path, message, value, hint) for each tracker the config asks for whose package is not installed here: for
    the validation report."""
    out = []
    for setting, (package, extra) in TRACKERS.items():
        value = getattr(monitoring, setting, None)
        if value and not installed(package):
            out.append((f"monitoring.{setting}", f"is set but {package} is not installed: the run would log "
                        "nothing there", value, install_hint(extra)))
    return out  # whether W&B is logged in is the engine's to say: a config is often checked on another machine
