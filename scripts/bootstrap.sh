#!/usr/bin/env bash
# Creates .venv and installs lf-tui into it: torch first and pinned (a CPU wheel here), then the rest.
# Usage: bash scripts/bootstrap.sh [--dev]     (--dev adds the test tools)
# GPU users: set LF_TUI_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" (or your CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q ${LF_TUI_TORCH:-torch==2.13.0}
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q -e '.[dev]'
else
  .venv/bin/python -m pip install -q -e .
fi
