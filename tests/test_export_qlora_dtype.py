"""QLoRA's 4-bit compute dtype is recorded where the run trains and used by `export --qlora-base 4bit` elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from engine.export import export
from engine.export_stream import four_bit_base
from engine.run_store import RunStore
from engine.runner import load_run_config
from methods.qlora.implementation import QUANTISATION_FILE
from tests.conftest import make_config, train
from tests.test_export import FP32_TOLERANCE, gap, load_merged, logits


def test_recorded_compute_dtype_is_used_on_another_machine(learnable_dataset: Path, tmp_path: Path) -> None:
    from engine.generate import load_trained_model

    cfg = make_config("qlora", training={"max_steps": 1, "learning_rate": 1e-2}, hardware={"mixed_precision": "no"})
    run, _, code = train(RunStore(tmp_path / "runs"), cfg, learnable_dataset)
    assert code == 0, (run.path / "engine.log").read_text()[-3000:]
    record = json.loads((run.weights_dir / QUANTISATION_FILE).read_text())
    assert record == {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "float32"}  # CPU: auto
    trained, *_ = load_trained_model(run)  # the model as trained: its 4-bit base computing in fp32
    # the run as if it had trained on a GPU: there "auto" is re-derived from this machine (no GPU: fp16, once)
    events = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    run.events_path.write_text("".join(json.dumps({**e, "device": "cuda"} if e["type"] == "run_started" else e) + "\n"
                                       for e in events))
    four_bit, origin = four_bit_base(run, load_run_config(run), run.weights_dir)
    assert four_bit.compute_dtype == torch.float32 and "as the run recorded it" in origin
    result = export(run.path, tmp_path / "4bit", merged=True, dtype="fp32", qlora_base="4bit")
    assert result["qlora_compute_dtype"] == "float32" and "compute dtype float32" in result["merge_path_reason"]
    assert gap(logits(load_merged(Path(result["out"]))), logits(trained)) < FP32_TOLERANCE
    # a run from before the record: said so, and auto on cuda taken as bf16 (what it resolves to on such GPUs)
    (run.weights_dir / QUANTISATION_FILE).unlink()
    four_bit, origin = four_bit_base(run, load_run_config(run), run.weights_dir)
    if not torch.cuda.is_available():
        assert four_bit.compute_dtype == torch.bfloat16 and "recorded none" in origin
