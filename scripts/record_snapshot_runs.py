"""Re-records tests/fixtures/snapshot_runs/: two short real runs, their small text files normalised to be machine-free.

Usage: python scripts/record_snapshot_runs.py [--steps 50]   (about a minute on a laptop CPU)

The engine trains the tour's sample runs (lora and full_finetune on the built-in model, as make_screenshots.py
does); then only config.json, meta.json, events.jsonl and summary.json of each run are copied (no weights,
checkpoints, engine.log or engine.json: without engine.json and with a `finished` event, the store reads the
run as completed). What varies between machines and runs is fixed: run ids, timestamps (shifted so each run
starts at a fixed moment, keeping the gaps between events), pids and absolute paths.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.run_store import RunStore  # noqa: E402
from tests.screen_tour import SAMPLE_METHODS, train_sample_runs  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "snapshot_runs"
KEPT = ("config.json", "meta.json", "events.jsonl", "summary.json")
START = 1767268800.0  # 2026-01-01 12:00:00 UTC; the second run starts 5 minutes later
IDS = {"lora": "20260101-120000-lora-aaaa", "full_finetune": "20260101-120500-full_finetune-bbbb"}


def normalised(value: Any, shift: float) -> Any:
    """`value` with its timestamps shifted by `shift` (rounded to the millisecond) and pids zeroed."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("ts", "created") and isinstance(item, (int, float)):
                out[key] = round(item + shift, 3)
            elif key == "pid" and isinstance(item, int):
                out[key] = 0
            else:
                out[key] = normalised(item, shift)
        return out
    if isinstance(value, list):
        return [normalised(item, shift) for item in value]
    return value


def copy_run(run_path: Path, run_id: str, start: float, replacements: list[tuple[str, str]], target: Path) -> None:
    created = json.loads((run_path / "meta.json").read_text(encoding="utf-8"))["created"]
    shift = start - created
    target.mkdir(parents=True)
    for name in KEPT:
        text = (run_path / name).read_text(encoding="utf-8")
        for old, new in replacements:  # longest first: the run's own folder before the store's
            text = text.replace(old, new)
        if name.endswith(".jsonl"):
            lines = [json.dumps(normalised(json.loads(line), shift), separators=(",", ":"))
                     for line in text.splitlines() if line.strip()]
            out = "\n".join(lines) + "\n"
        else:
            out = json.dumps(normalised(json.loads(text), shift), indent=2) + "\n"
        (target / name).write_text(out, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="training steps per run (default 50)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LF_TUI_CACHE"] = str(Path(tmp) / "cache")  # no machine-wide cache path in the logs
        store = RunStore(Path(tmp) / "runs")
        runs = train_sample_runs(store, args.steps)
        if FIXTURES.exists():
            shutil.rmtree(FIXTURES)
        for index, (method, run) in enumerate(zip(SAMPLE_METHODS, runs)):
            run_id = IDS[method]
            replacements = [(str(run.path), f"runs/{run_id}"), (run.run_id, run_id), (str(store.root), "runs"),
                            (str(Path(tmp)), "/tmp"), (str(ROOT), "."), (str(Path.home()), "~")]
            copy_run(run.path, run_id, START + 300 * index, replacements, FIXTURES / run_id)
            status = json.loads((FIXTURES / run_id / "summary.json").read_text(encoding="utf-8")).get("status")
            print(f"{run_id}: {status}")
    size = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"wrote {FIXTURES.relative_to(ROOT)} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
