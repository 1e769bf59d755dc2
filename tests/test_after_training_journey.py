"""Issue 13's journey with the installed command, from an empty folder (default ./runs), on the built-in model and
on a locally built Qwen2: train two runs, compare them with the base in one serving process, fuse them, export the
fused adapter merged, and load the merged folder with plain transformers: it answers as the adapter did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_models import save_tiny_model

LF_TUI = Path(sys.executable).with_name("lf-tui")
PROMPT = "Say the greeting."


def lf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    out = subprocess.run([str(LF_TUI), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    return out


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.parametrize("base", ["builtin:tiny-llama", "./qwen2"])
def test_train_compare_fuse_export_and_load_merged(base: str, tmp_path: Path) -> None:
    from tests.conftest import LEARNABLE

    if base.startswith("./"):
        save_tiny_model(tmp_path / "qwen2", "qwen2")
    (tmp_path / "greet.jsonl").write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    doc = json.loads((Path(__file__).parents[1] / "methods" / "lora" / "defaults.json").read_text())
    mc = doc["method_config"]
    mc["base_model"] = base  # a config path: relative to the config's folder
    mc["hardware"]["mixed_precision"] = "no"
    mc["monitoring"].update(eval_steps=0, save_steps=0)
    run_ids = []
    for lr in (1e-2, 3e-2):
        mc["training"].update(max_steps=6, learning_rate=lr, max_seq_length=64)
        (tmp_path / f"lr{lr}.json").write_text(json.dumps(doc))
        ok(lf("train", "-c", f"lr{lr}.json", "--dataset", "greet.jsonl", "--plain", cwd=tmp_path))
        listed = json.loads(ok(lf("runs", "--json", cwd=tmp_path)))
        run_ids.append(next(r["run_id"] for r in listed if r["run_id"] not in run_ids))

    answers = json.loads(ok(lf("generate", "--run", run_ids[0], "--run", run_ids[1], "--base", "--prompt", PROMPT,
                               "--json", cwd=tmp_path)))
    texts = {a["target"]: a["text"] for a in answers}
    assert set(texts) == {*run_ids, "base"} and len(set(texts.values())) > 1
    assert all(a["first_token_s"] > 0 and a["tokens_per_s"] > 0 for a in answers)

    fused = json.loads(ok(lf("fuse", *run_ids, "--weights", "0.6,0.4", "--json", cwd=tmp_path)))
    fused_id = fused["run_id"]
    listed = {r["run_id"]: r for r in json.loads(ok(lf("runs", "--json", cwd=tmp_path)))}
    assert fused_id in listed and listed[fused_id]["status"] == "completed"
    (fused_answer,) = json.loads(ok(lf("generate", "--run", fused_id, "--run", run_ids[0], "--prompt", PROMPT,
                                       "--json", cwd=tmp_path)))[:1]
    assert fused_answer["target"] == fused_id

    ok(lf("export", fused_id, "--out", "merged", "--merged", "--dtype", "fp32", cwd=tmp_path))
    merged = tmp_path / "merged"
    assert (merged / "config.json").is_file() and (merged / "README.md").is_file()
    script = f"""
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from engine.generate import format_prompt
tok = AutoTokenizer.from_pretrained({str(merged)!r})
model = AutoModelForCausalLM.from_pretrained({str(merged)!r}).eval()
from engine.data import prompt_ids
text = format_prompt(tok, {PROMPT!r}, "alpaca")  # the prompt as lf-tui's own generate builds it
ids = torch.tensor([prompt_ids(tok, text)])
out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=32, do_sample=False,
                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
print(json.dumps(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)))
"""
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=str(Path(__file__).parents[1]))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == fused_answer["text"]
