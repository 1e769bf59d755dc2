"""`python -m engine.export RUN --out DIR [--merged] [--dtype D] [--merge-path P] [--qlora-base B]`: a run's model to share."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.export_card import KINDS, model_card
from lf_common.files import follow_umask

DTYPES = ("fp32", "bf16", "fp16")
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
MANIFEST, CARD = "lf_tui_export.json", "README.md"
MAX_SHARD = "2GB"  # save_pretrained writes safetensors shards of at most this size
QUANTISED = ("Linear4bit", "Linear8bitLt", "Params4bit", "Int8Params")  # bitsandbytes layers a merge must not leave
MERGE_PATHS = ("auto", "streaming", "in-memory")
# what a QLoRA adapter merges into: auto (its 4-bit base de-quantised, the weights it trained on, when the
# streamed merge applies; else the full-precision base, with why), 4bit (insist), full (the unquantised base)
QLORA_BASES = ("auto", "4bit", "full")


def fail(message: str, hint: str = "") -> Exception:
    from engine.errors import EngineError

    return EngineError("export", message, hint)


def trained_folder(run: Any) -> tuple[Path, str]:
    """(the run's trained weights, where they come from): weights/, else the latest complete checkpoint's."""
    if run.weights_dir.is_dir():
        return run.weights_dir, "final"
    checkpoint = run.latest_checkpoint()
    if checkpoint is not None and (checkpoint / "weights").is_dir():
        return checkpoint / "weights", f"checkpoint {checkpoint.name} (the run has not finished)"
    raise fail(f"run {run.run_id} has no trained weights yet (no weights/ and no checkpoint)",
               "wait for the run to save a checkpoint, or train it to the end")


def weights_kind(folder: Path) -> str:
    """peft (a PEFT adapter), model (a whole transformers model: full fine-tuning) or lf-tui (a format of ours)."""
    adapter = folder / "adapter_config.json"
    if adapter.is_file() and "peft_type" in json.loads(adapter.read_text(encoding="utf-8")):
        return "peft"
    return "model" if (folder / "config.json").is_file() else "lf-tui"


def check_out(out: Path, force: bool) -> None:
    """Refuse a non-empty `out`, unless --force and it holds a previous export (never a folder of someone else's)."""
    if out.exists() and not out.is_dir():
        raise fail(f"{out} exists and is not a folder", "choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise fail(f"{out} exists and is not empty", "choose another --out, or pass --force to replace a "
                                                         "previous export there")
        if not (out / MANIFEST).is_file():
            raise fail(f"{out} is not empty and holds no lf-tui export ({MANIFEST}): --force replaces only a "
                       "previous export", "choose another --out, or empty the folder yourself")


def staging(out: Path, force: bool) -> Path:
    """A fresh folder beside `out` to write into (renamed to `out` at the end)."""
    check_out(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-export-", dir=out.parent))
    except OSError as exc:
        raise fail(f"cannot write in {out.parent}: {exc.strerror or exc}", "choose a folder you can write") from None
    return stage  # mkdtemp's private folder: opened to the umask (with all in it) before it is renamed


def trained_on_4bit(cfg: Any) -> bool:
    """A QLoRA run whose base was quantised to 4 bits as it trained."""
    return cfg.method_name == "qlora" and bool(getattr(cfg.method_specific, "load_in_4bit", False))


def resolve_dtype(name: str, cfg: Any) -> str:
    """fp32/bf16/fp16; auto: the base model's own dtype (its config.json), fp32 when it names none of those."""
    if name != "auto":
        return name
    from transformers import AutoConfig

    from engine.errors import EngineError
    from engine.models import model_source

    try:
        config = AutoConfig.from_pretrained(model_source(cfg.base_model), trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise EngineError("model", f"cannot read the config of {cfg.base_model!r}: {str(exc).splitlines()[0][:300]}",
                          "give --dtype, or make the base model reachable (a folder, or a hub id this machine can "
                          "download)") from None
    found = str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "").replace("torch.", "")
    return next((short for short, long in TORCH_DTYPES.items() if long == found), "fp32")


def check_plain(model: Any, dtype: Any) -> None:
    """A merged model has no adapter or quantised layer left and every floating weight in `dtype`."""
    leftovers = sorted({type(m).__name__ for n, m in model.named_modules()
                        if type(m).__name__ in QUANTISED or "lora_" in n or "ia3_" in n})
    if leftovers or getattr(model, "peft_config", None) or getattr(model, "is_quantized", False):
        raise fail(f"the merged model still holds adapter or quantised layers ({', '.join(leftovers) or 'PEFT'})",
                   "the base model must be a full-precision one (not a pre-quantised checkpoint)")
    wrong = {str(p.dtype) for p in model.parameters() if p.is_floating_point() and p.dtype != dtype}
    if wrong:
        raise fail(f"the merged model has weights in {', '.join(sorted(wrong))}, not {dtype}", "this looks like a bug")


def generation_config(cfg: Any, tokenizer: Any, model: Any = None) -> Any:
    """The model's generation config (else the base's), with the tokenizer's pad and eos tokens filled in."""
    from transformers import AutoConfig, GenerationConfig

    from engine.models import model_source

    config = getattr(model, "generation_config", None)
    if config is None:
        try:
            config = GenerationConfig.from_pretrained(model_source(cfg.base_model))
        except OSError:
            config = GenerationConfig.from_model_config(
                AutoConfig.from_pretrained(model_source(cfg.base_model), trust_remote_code=cfg.trust_remote_code))
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        if getattr(config, key, None) is None and getattr(tokenizer, key, None) is not None:
            setattr(config, key, getattr(tokenizer, key))
    config.use_cache = True
    return config


def write_merged(impl: Any, cfg: Any, weights: Path, dtype_name: str, tokenizer: Any, stage: Path) -> None:
    """The merged model, on the CPU in `dtype_name`: one copy of it in memory, saved as safetensors shards."""
    import torch

    from engine.models import Runtime
    from engine.runner import EngineContext

    dtype = getattr(torch, TORCH_DTYPES[dtype_name])
    ctx = EngineContext(cfg, Runtime(torch.device("cpu")), lambda level, message: print(message, file=sys.stderr))
    with torch.no_grad():
        model = impl.merge(weights, dtype, ctx)
    if model is None:
        raise fail(f"method {cfg.method_name} cannot merge: {impl.merge_refusal}", "export without --merged")
    check_plain(model, dtype)
    model.config.use_cache = True  # the engine loads with the cache off (training); a shared model generates
    model.generation_config = generation_config(cfg, tokenizer, model)
    model.save_pretrained(str(stage), max_shard_size=MAX_SHARD)


def write_adapter(cfg: Any, weights: Path, tokenizer: Any, stage: Path) -> None:
    """The trained files as saved (PEFT's own card left out: ours replaces it), and the base's generation config."""
    for item in weights.iterdir():
        if item.is_file() and item.name != CARD:
            shutil.copyfile(item, stage / item.name)
    config = stage / "config.json"
    if config.is_file():  # a whole model (full fine-tuning), saved with the cache off as the engine trains
        document = json.loads(config.read_text(encoding="utf-8"))
        document["use_cache"] = True
        config.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if not (stage / "generation_config.json").is_file():
        generation_config(cfg, tokenizer).save_pretrained(str(stage))


def export(run_dir: str | Path, out_dir: str | Path, merged: bool = False, dtype: str = "auto",
           force: bool = False, merge_path: str = "auto", qlora_base: str = "auto") -> dict[str, Any]:
    """Write the run's model into `out_dir`: adapter-only (as trained) or merged into plain base weights (streamed
    shard by shard from the base's safetensors files when the adapter is LoRA-family, else in memory: `merge_path`
    auto chooses, streaming or in-memory insists; a QLoRA run merges into its base 4-bit quantised and
    de-quantised as it trained, so the merged model computes what the trained one did (`qlora_base` auto or 4bit),
    or into the full-precision base ("full"; auto falls back to it, saying why, when the 4-bit merge cannot run));
    returns what was written.
    Everything goes into a fresh folder first, renamed to `out_dir` once complete."""
    from engine.errors import EngineError
    from engine.export_stream import four_bit_base, streaming_plan, write_streamed
    from engine.models import load_tokenizer
    from engine.run_store import RunDir
    from engine.runner import load_run_config
    from methods.catalogue import get_catalogue
    from methods.contract import MethodImplementation

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise fail(f"{run.path}: no such run folder")
    cfg = load_run_config(run)
    weights, origin = trained_folder(run)
    impl = get_catalogue().get(cfg.method_name).implementation()
    kind = weights_kind(weights)
    if merged and type(impl).merge is MethodImplementation.merge:
        raise fail(f"method {cfg.method_name} cannot merge: {impl.merge_refusal}",
                   f"export without --merged: the {KINDS[kind]} as trained, with loading instructions")
    if not merged and dtype != "auto":
        raise fail("--dtype applies to --merged exports only (an adapter-only export copies the weights as trained)",
                   "add --merged, or drop --dtype")
    out = Path(out_dir).absolute()
    dtype_name = resolve_dtype(dtype, cfg) if merged else "as trained"
    if qlora_base not in QLORA_BASES:
        raise fail(f"--qlora-base {qlora_base!r}: not one of {', '.join(QLORA_BASES)}")
    if qlora_base not in ("auto", "full") and not merged:
        raise fail("--qlora-base applies to --merged exports only", "add --merged, or drop --qlora-base")
    asked, qlora_note = qlora_base, ""
    if qlora_base == "auto":
        qlora_base = "4bit" if merged and trained_on_4bit(cfg) else "full"
    four_bit, four_bit_origin = four_bit_base(run, cfg, weights) if qlora_base == "4bit" else (None, "")
    try:
        streamed, reason = streaming_plan(cfg, weights, merge_path, four_bit) if merged else (None, "")
    except EngineError as exc:
        if asked != "auto" or four_bit is None:
            raise
        # the 4-bit merge needs the streamed one: without it, the full-precision base (and the manifest says why)
        qlora_base, four_bit, qlora_note = "full", None, f"; QLoRA into the full-precision base: {exc.message}"
        streamed, reason = streaming_plan(cfg, weights, merge_path, None)
    reason += qlora_note or (f" ({four_bit_origin})" if four_bit is not None else "")
    path = None if not merged else ("streaming" if streamed is not None else "in-memory")
    stage = staging(out, force)
    try:
        tokenizer = load_tokenizer(cfg)
        if streamed is not None:
            write_streamed(streamed, cfg, dtype_name, tokenizer, stage)
        elif merged:
            write_merged(impl, cfg, weights, dtype_name, tokenizer, stage)
        else:
            write_adapter(cfg, weights, tokenizer, stage)
        tokenizer.save_pretrained(str(stage))
        manifest = {"run_id": run.run_id, "method": cfg.method_name, "base_model": cfg.base_model, "merged": merged,
                    "dtype": dtype_name, "weights": kind if not merged else "model", "weights_from": origin,
                    "merge_path": path, "merge_path_reason": reason, "exported": time.time()}
        if cfg.method_name == "qlora" and merged:
            manifest["qlora_base"] = qlora_base
            if four_bit is not None:
                manifest["qlora_compute_dtype"] = str(four_bit.compute_dtype).replace("torch.", "")
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        refusal = "" if type(impl).merge is not MethodImplementation.merge else impl.merge_refusal
        (stage / CARD).write_text(model_card(run, cfg, manifest, out, refusal), encoding="utf-8")
        check_out(out, force)  # again: something may have been written there while we merged
        if out.exists():
            shutil.rmtree(out)
        follow_umask(stage)  # a folder to share: not mkdtemp's 0700, nor safetensors' 0600 files
        stage.rename(out)
    except OSError as exc:
        raise fail(f"exporting to {out}: {exc.strerror or exc}", "check the free disk space and the folder's permissions") \
            from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    files = [{"name": str(p.relative_to(out)), "bytes": p.stat().st_size} for p in sorted(out.rglob("*"))
             if p.is_file()]
    return {**manifest, "out": str(out), "files": files, "total_bytes": sum(f["bytes"] for f in files),
            "merge_refusal": refusal}


def _json_result(compute: Any) -> int:
    from engine.eval_process import json_result

    return json_result(compute, "a merged export holds one copy of the model in memory: use --dtype bf16, or a "
                                "machine with more memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.export", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--merged", action="store_true", help="fold the trained weights into the base weights")
    parser.add_argument("--dtype", choices=("auto", *DTYPES), default="auto")
    parser.add_argument("--force", action="store_true", help="replace a previous export in --out")
    parser.add_argument("--merge-path", choices=MERGE_PATHS, default="auto",
                        help="auto: shard by shard from the base's safetensors files when the adapter allows, else in "
                             "memory; streaming or in-memory: that path (streaming fails when it does not apply)")
    parser.add_argument("--qlora-base", choices=QLORA_BASES, default="auto",
                        help="QLoRA: into the 4-bit base de-quantised, the weights it trained on (auto, the default: "
                             "falls back to full when that cannot run; 4bit: insist), or the full-precision base (full)")
    args = parser.parse_args(argv)
    return _json_result(lambda: export(args.run_dir, args.out, args.merged, args.dtype, args.force, args.merge_path,
                                       args.qlora_base))


if __name__ == "__main__":
    sys.exit(main())
