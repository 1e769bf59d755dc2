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
from tests.engine_builders import built
from tests.test_export import FP32_TOLERANCE, IDS, gap, load_merged


def test_recorded_compute_dtype_is_used_on_another_machine(tmp_path: Path) -> None:
    """The model built as the engine builds it on this CPU ("auto": fp32), saved by the method's own save; the run
    then reads as trained on a GPU, where "auto" re-derived on this GPU-less machine would be fp16."""
    cfg, _, model, impl = built("qlora")
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)  # a trained-looking update, not PEFT's zeros
    store = RunStore(tmp_path / "runs")
    run = store.create("qlora", cfg.model_dump(mode="json"), {"dataset": "synthetic"})
    impl.save(model, run.weights_dir)
    record = json.loads((run.weights_dir / QUANTISATION_FILE).read_text())
    assert record == {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "float32"}
    run.events_path.write_text(json.dumps({"type": "run_started", "device": "cuda"}) + "\n")
    four_bit, origin = four_bit_base(run, load_run_config(run), run.weights_dir)
    assert four_bit.compute_dtype == torch.float32 and "as the run recorded it" in origin
    result = export(run.path, tmp_path / "4bit", merged=True, dtype="fp32", qlora_base="4bit")
    assert result["qlora_compute_dtype"] == "float32" and "compute dtype float32" in result["merge_path_reason"]
    model.eval()
    with torch.no_grad():
        trained = model(input_ids=IDS).logits.float()
        merged = load_merged(Path(result["out"])).eval()(input_ids=IDS).logits.float()
    assert gap(merged, trained) < FP32_TOLERANCE  # the merge computes what the model as trained did
    # a run from before the record: said so, and auto on cuda taken as bf16 (what it resolves to on such GPUs)
    (run.weights_dir / QUANTISATION_FILE).unlink()
    four_bit, origin = four_bit_base(run, load_run_config(run), run.weights_dir)
    if not torch.cuda.is_available():
        assert four_bit.compute_dtype == torch.bfloat16 and "recorded none" in origin
