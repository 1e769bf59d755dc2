"""Secret-looking config keys (api_key, hf_token, password...) and a redacted copy of a config."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY = re.compile(r"(?:^|_)(?:api_?key|token|secret|password|access_key|auth)$", re.I)
REDACTED = "<redacted>"


def is_secret_key(key: object) -> bool:
    return bool(SECRET_KEY.search(str(key)))


def redact(data: Any) -> Any:
    """Copy of a config with values of secret-looking keys replaced."""
    if isinstance(data, dict):
        return {k: (REDACTED if is_secret_key(k) and v else redact(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data
