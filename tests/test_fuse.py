"""`lf-tui fuse`: PEFT's weighted adapters from trained LoRA runs, checked against the combinations' formulas; the
refusals; the fused run listed with its parents, served, exported and loaded by stock PEFT."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.errors import EngineError
from engine.fuse import fuse
from engine.run_store import RunDir, RunStore
from tests.conftest import LEARNABLE, make_config, train
from tests.tiny_models import save_tiny_model

ROOT = Path(__file__).resolve().parents[1]
LF_TUI = Path(sys.executable).with_name("lf-tui")
TOLERANCE = 1e-5  # fp32: the fused matrices against the formula's (sums of a few products, rounding only)
IDS = torch.tensor([[1, *range(20, 60, 3), 2, 7, 300, 499]])  # token ids of the built-in 512-token vocabulary
TRAINED: dict[str, dict[str, dict[str, Any]]] = {"a": {"training": {"seed": 1, "learning_rate": 1e-2}},
           "b": {"training": {"seed": 2, "learning_rate": 2e-2}},
           "r8": {"training": {"seed": 3, "learning_rate": 1e-2},
                  "method_specific": {"r": 8, "lora_alpha": 32, "use_rslora": True}}}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuse")


@pytest.fixture(scope="module")
def runs(root: Path) -> Any:
    """Trained runs by name ("a", "b", "r8"; "gpt2-a", "gpt2-b" on a tiny GPT-2; "qlora-a", "qlora-b"), each
    trained once on first use in `root`/runs (the default runs dir from `root`)."""
    dataset = root / "learnable.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in LEARNABLE))
    store = RunStore(root / "runs")

    class Runs(dict):
        def __missing__(self, name: str) -> RunDir:
            arch, _, key = name.rpartition("-")
            method = "qlora" if arch == "qlora" else "lora"
            sections: dict[str, Any] = {"hardware": {"mixed_precision": "no"}}
            for section, values in TRAINED[key].items():
                sections[section] = {**values, "max_steps": 4} if section == "training" else values
            if arch and method == "lora":
                sections["base_model"] = str(save_tiny_model(root / arch, arch))
            run, _, code = train(store, make_config(method, **sections), dataset)
            assert code == 0, (run.path / "engine.log").read_text()[-3000:]
            self[name] = run
            return run

    return Runs()


def total(terms: Any) -> torch.Tensor:
    """The sum of tensors (a generator of them)."""
    return torch.stack(list(terms)).sum(0)


def base_of(run: RunDir) -> Any:
    from transformers import AutoModelForCausalLM

    from engine.models import model_source

    return AutoModelForCausalLM.from_pretrained(model_source(run.config()["base_model"]), dtype=torch.float32)  # type: ignore[index]


def adapter(folder: Path) -> tuple[dict[str, Any], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """(adapter_config.json, module name -> (A, B)) of a saved PEFT LoRA adapter."""
    from safetensors.torch import load_file

    config = json.loads((folder / "adapter_config.json").read_text())
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    names = {k.split(".lora_A.")[0] for k in tensors if ".lora_A." in k}
    return config, {n: (tensors[f"{n}.lora_A.weight"], tensors[f"{n}.lora_B.weight"]) for n in names}


def scaling(config: dict[str, Any]) -> float:
    r, alpha = config["r"], config["lora_alpha"]
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def fused_run(result: dict[str, Any]) -> RunDir:
    return RunDir(result["path"])


def logits_with_deltas(run: RunDir, deltas: dict[str, torch.Tensor], fan_in_fan_out: bool) -> torch.Tensor:
    """The base model's logits with each adapted weight W replaced by W + delta (the update done by hand)."""
    model = base_of(run).eval()
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, delta in deltas.items():
            layer = modules[name.removeprefix("base_model.model.")]
            layer.weight += delta.T if fan_in_fan_out else delta
        return model(IDS).logits


def stock_peft_logits(run: RunDir) -> torch.Tensor:
    from peft import PeftModel

    model = PeftModel.from_pretrained(base_of(run), str(run.weights_dir)).eval()
    with torch.no_grad():
        return model(IDS).logits


@pytest.mark.parametrize("arch", ["", "gpt2-"])
def test_linear_fusion_is_peft_s_formula(runs: Any, root: Path, arch: str) -> None:
    """linear: A = sum sqrt(w s) A_i, B = sum sqrt(w s) B_i (s: each parent's scaling), at scaling 1; the fused
    adapter loads in stock PEFT and its logits are the base's with W + B @ A. GPT-2: Conv1D, fan_in_fan_out."""
    a, b = runs[f"{arch}a"], runs[f"{arch}b"]
    weights = [0.6, 0.4]
    result = fuse([a.path, b.path], weights, "linear", runs_dir=root / "runs")
    fused = fused_run(result)
    config, got = adapter(fused.weights_dir)
    parents = [adapter(a.weights_dir), adapter(b.weights_dir)]
    assert config["r"] == parents[0][0]["r"] and config["lora_alpha"] == config["r"] and not config["use_rslora"]
    assert set(got) == set(parents[0][1]) and got
    deltas = {}
    for name, (fa, fb) in got.items():
        roots = [math.sqrt(w * scaling(c)) for w, (c, _) in zip(weights, parents)]
        want_a = total(k * t[name][0] for k, (_, t) in zip(roots, parents))
        want_b = total(k * t[name][1] for k, (_, t) in zip(roots, parents))
        assert torch.allclose(fa, want_a, atol=TOLERANCE) and torch.allclose(fb, want_b, atol=TOLERANCE), name
        assert fb.abs().max() > 0  # trained adapters: the check is not 0 == 0
        deltas[name] = want_b @ want_a
    # not the weighted sum of the updates: linear mixes A and B (PEFT calls it a rough approximation)
    name = next(iter(got))
    exact = total(w * scaling(c) * t[name][1] @ t[name][0] for w, (c, t) in zip(weights, parents))
    assert not torch.allclose(deltas[name], exact, atol=1e-4)
    expected = logits_with_deltas(fused, deltas, bool(config["fan_in_fan_out"]))
    assert torch.allclose(stock_peft_logits(fused), expected, atol=5e-5)
    assert not torch.allclose(expected, logits_with_deltas(fused, {}, False), atol=1e-3)  # the deltas matter
    assert result["derived_from"] == [a.run_id, b.run_id] and fused.info().status == "completed"


def test_cat_fusion_is_the_exact_weighted_sum_across_ranks_and_rslora(runs: Any, root: Path) -> None:
    """cat stacks A and B: the fused update is sum w_i s_i B_i A_i exactly, for parents of ranks 16 and 8 (rsLoRA:
    s = alpha / sqrt(r)); negative weights subtract."""
    a, r8 = runs["a"], runs["r8"]
    weights = [0.7, -0.5]
    fused = fused_run(fuse([a.path, r8.path], weights, "cat", runs_dir=root / "runs"))
    config, got = adapter(fused.weights_dir)
    parents = [adapter(a.weights_dir), adapter(r8.weights_dir)]
    assert parents[1][0]["use_rslora"] and config["r"] == 16 + 8 and scaling(config) == 1.0
    for name, (fa, fb) in got.items():
        exact = total(w * scaling(c) * t[name][1] @ t[name][0] for w, (c, t) in zip(weights, parents))
        assert torch.allclose(fb @ fa, exact, atol=TOLERANCE), name
    assert fused.config()["method_specific"]["r"] == 24 and fused.config()["fusion"]["combination"] == "cat"  # type: ignore[index]


@pytest.mark.parametrize("combination, density", [("svd", None), ("ties", 0.5), ("dare_linear", 0.5)])
def test_other_combinations_build_adapters_stock_peft_loads(runs: Any, root: Path, combination: str,
                                                           density: float | None) -> None:
    a, b = runs["a"], runs["b"]
    result = fuse([a.path, b.path], [0.5, 0.5], combination, density, runs_dir=root / "runs")
    fused = fused_run(result)
    logits = stock_peft_logits(fused)
    assert torch.isfinite(logits).all()
    assert (fused.summary() or {})["fusion"]["density"] == density
    if combination == "svd":  # the best rank-16 approximation of the weighted sum of two rank-16 updates
        config, got = adapter(fused.weights_dir)
        parents = [adapter(a.weights_dir), adapter(b.weights_dir)]
        assert config["r"] == 16
        for name, (fa, fb) in got.items():
            exact = total(0.5 * scaling(c) * t[name][1] @ t[name][0] for c, t in parents)
            tail = torch.linalg.svdvals(exact)[16:].norm()  # Eckart-Young: the least error any rank 16 can have
            assert abs((fb @ fa - exact).norm() - tail) <= 1e-4 * exact.norm(), name


def test_dare_is_reproducible_with_its_seed(runs: Any, root: Path) -> None:
    from safetensors.torch import load_file

    paths = [runs["a"].path, runs["b"].path]
    first, again, other = (fused_run(fuse(paths, [0.5, 0.5], "dare_ties", 0.5, seed, runs_dir=root / "runs"))
                           for seed in (7, 7, 8))
    tensors = [load_file(str(r.weights_dir / "adapter_model.safetensors")) for r in (first, again, other)]
    assert all(torch.equal(tensors[0][k], tensors[1][k]) for k in tensors[0])
    assert any(not torch.equal(tensors[0][k], tensors[2][k]) for k in tensors[0])


def copy_run(run: RunDir, store: RunStore, name: str, edit_adapter: dict[str, Any] | None = None,
             config: dict[str, Any] | None = None, weights: bool = True) -> RunDir:
    target = store.root / name
    shutil.copytree(run.path, target, ignore=None if weights else shutil.ignore_patterns("weights", "checkpoints"))
    copy = RunDir(target)
    if edit_adapter:
        file = copy.weights_dir / "adapter_config.json"
        file.write_text(json.dumps({**json.loads(file.read_text()), **edit_adapter}))
    if config:
        copy.file("config.json").write_text(json.dumps({**(copy.config() or {}), **config}))
    return copy


def test_incompatible_runs_are_refused_with_the_reason(runs: Any, root: Path, tmp_path: Path) -> None:
    a, b, r8, gpt2 = runs["a"], runs["b"], runs["r8"], runs["gpt2-a"]
    store = RunStore(tmp_path / "runs")
    store.root.mkdir()
    ia3 = store.create("ia3", {"method_name": "ia3", "base_model": "builtin:tiny-llama"})
    cases = [
        ([a, gpt2], [0.5, 0.5], "linear", None, "different base models"),
        ([a, copy_run(a, store, "as-qlora", config={"method_name": "qlora"})], [0.5, 0.5], "linear", None,
         "different methods"),
        ([a, copy_run(b, store, "qk", {"target_modules": ["q_proj", "k_proj"]})], [0.5, 0.5], "linear", None,
         "adapt different modules"),
        ([a, r8], [0.5, 0.5], "linear", None, "different ranks (16 and 8)"),
        ([a, r8], [0.5, 0.5], "ties", 0.5, "different ranks"),
        ([a, copy_run(b, store, "dora", {"use_dora": True})], [0.5, 0.5], "linear", None, "DoRA"),
        ([a, copy_run(b, store, "saved", {"modules_to_save": ["lm_head"]})], [0.5, 0.5], "cat", None,
         "modules_to_save"),
        ([a, copy_run(b, store, "bias", {"bias": "all"})], [0.5, 0.5], "cat", None, "trains biases"),
        ([a, copy_run(b, store, "untrained", weights=False)], [0.5, 0.5], "linear", None, "no trained weights"),
        ([a, ia3], [0.5, 0.5], "linear", None, "is ia3: fusion combines LoRA-family adapters"),
        ([a, b], [1.0], "linear", None, "1 weight(s) for 2 runs"),
        ([a], [1.0], "linear", None, "two runs or more"),
        ([a, a], [0.5, 0.5], "linear", None, "given twice"),
        ([a, b], [0.5, 0.5], "ties", None, "needs --density"),
        ([a, b], [0.5, 0.5], "linear", 0.5, "--density applies to"),
        ([a, b], [0.5, 0.5], "dare_linear", 1.5, "not in (0, 1]"),
    ]
    for parents, weights, combination, density, reason in cases:
        with pytest.raises(EngineError, match=None) as caught:
            fuse([p.path for p in parents], weights, combination, density, runs_dir=store.root)
        assert caught.value.kind == "fuse" and reason in caught.value.message, (reason, caught.value.message)
        assert caught.value.hint
    assert {p.name for p in store.root.iterdir()} == {"as-qlora", "qk", "dora", "saved", "bias", "untrained",
                                                      ia3.run_id}  # nothing made, no staging left


def test_a_refusal_comes_before_torch_is_imported(runs: Any, root: Path) -> None:
    a, gpt2 = runs["a"], runs["gpt2-a"]
    code = ("import sys\nfrom engine.errors import EngineError\nfrom engine.fuse import fuse\n"
            f"try:\n    fuse([{str(a.path)!r}, {str(gpt2.path)!r}], [0.5, 0.5], runs_dir={str(root / 'x')!r})\n"
            "except EngineError as exc:\n    print(exc.message)\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "False" and "different base models" in out.stdout


def lf_tui(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LF_TUI_RUNS_DIR"}
    return subprocess.run([str(LF_TUI), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_cli_fuse_as_a_user_runs_it_then_lists_serves_and_exports(runs: Any, root: Path) -> None:
    """The installed command from a folder holding only ./runs: fuse by id prefixes, then `lf-tui runs` lists the
    fused run with its parents, generate serves it beside its parent and the base, export --merged writes a model
    stock transformers loads with the fused adapter's logits."""
    if not LF_TUI.exists():
        pytest.skip(f"lf-tui is not installed next to {sys.executable}")
    cwd = root / "user"  # a folder holding only ./runs, with the runs the user trained (copied: folders move)
    for name in ("a", "b", "r8"):
        shutil.copytree(runs[name].path, cwd / "runs" / runs[name].run_id)
    a, b, r8 = (RunDir(cwd / "runs" / runs[name].run_id) for name in ("a", "b", "r8"))
    fused_cli = lf_tui("fuse", a.run_id, b.run_id[:20], "--weights", "0.6,0.4", cwd=cwd)
    assert fused_cli.returncode == 0, fused_cli.stderr
    assert "fused run" in fused_cli.stdout and f"0.6 x {a.run_id} + 0.4 x {b.run_id} (linear, rank 16)" in \
        fused_cli.stdout and "adapter size:" in fused_cli.stdout and "tokens/s:" in fused_cli.stdout
    listed = json.loads(lf_tui("runs", "--json", cwd=cwd).stdout)
    fused = next(r for r in listed if r["derived_from"] == [a.run_id, b.run_id])
    assert fused["status"] == "completed" and fused["method"] == "lora" and not fused["problems"]
    assert fused["deployment"]["adapter_bytes"] > 0 and fused["deployment"]["tokens_per_s"] > 0
    run_id = fused["run_id"]
    answers = lf_tui("generate", "--run", run_id, "--run", a.run_id, "--base", "--prompt", "Say the greeting.",
                     "--max-new-tokens", "6", "--json", cwd=cwd)
    assert answers.returncode == 0, answers.stderr
    by_target = {x["target"]: x for x in json.loads(answers.stdout)}
    assert set(by_target) == {run_id, a.run_id, "base"} and all("error" not in x for x in by_target.values())
    assert by_target[run_id]["kind"] == "peft:LORA" and by_target[run_id]["tokens_per_s"] > 0
    exported = lf_tui("export", run_id, "--out", "fused-merged", "--merged", "--dtype", "fp32", cwd=cwd)
    assert exported.returncode == 0, exported.stderr
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(str(cwd / "fused-merged"), dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.allclose(merged(IDS).logits, stock_peft_logits(RunDir(cwd / "runs" / run_id)), atol=5e-5)
    card = (cwd / "fused-merged" / "README.md").read_text()
    assert "fusion of 2 lora runs" in card and run_id in card and f"`{a.run_id}`: weight 0.6" in card
    negative = lf_tui("fuse", a.run_id, b.run_id, "--weights=-0.5,1", "--combination", "cat", "--json", cwd=cwd)
    assert negative.returncode == 0, negative.stderr
    assert json.loads(negative.stdout)["fusion"]["weights"] == [-0.5, 1.0]
    refused = lf_tui("fuse", a.run_id, b.run_id, "--weights", "0.6", cwd=cwd)
    assert refused.returncode == 2 and "1 weight(s) for 2 run(s)" in refused.stderr and "Traceback" not in \
        refused.stderr
    different = lf_tui("fuse", a.run_id, r8.run_id, "--weights", "0.5,0.5", cwd=cwd)
    assert different.returncode == 1 and "different ranks" in different.stderr and "--combination cat" in \
        different.stderr and "Traceback" not in different.stderr


def test_serving_process_answers_from_a_fused_run_as_its_adapter_does(runs: Any, root: Path) -> None:
    """python -m engine.serve loads the fused run beside a parent on one base; its greedy answer is the stock PEFT
    model's greedy answer."""
    from peft import PeftModel

    from engine.generate import format_prompt
    from engine.models import load_tokenizer
    from engine.runner import load_run_config

    a, b = runs["a"], runs["b"]
    fused = fused_run(fuse([a.path, b.path], [1.0, 1.0], "cat", runs_dir=root / "runs"))
    requests = [{"type": "load", "runs": [str(fused.path), str(a.path)]},
                {"type": "generate", "prompt": "Say the greeting.", "targets": [fused.run_id, a.run_id],
                 "max_new_tokens": 8}, {"type": "quit"}]
    out = subprocess.run([sys.executable, "-m", "engine.serve"], input="".join(json.dumps(r) + "\n" for r in requests),
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    loaded = [e for e in events if e["type"] == "loaded"]
    assert len(loaded) == 2 and loaded[-1]["bases_loaded"] == 1, events
    answer = next(e for e in events if e["type"] == "answer" and e["target"] == fused.run_id)
    cfg = load_run_config(fused)
    tokenizer = load_tokenizer(cfg)
    model = PeftModel.from_pretrained(base_of(fused), str(fused.weights_dir)).eval()
    from engine.data import prompt_ids

    ids = torch.tensor([prompt_ids(tokenizer, format_prompt(tokenizer, "Say the greeting.", "alpaca"))])
    with torch.no_grad():
        want = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    assert answer["text"] == tokenizer.decode(want[0, ids.shape[1]:], skip_special_tokens=True)


def test_qlora_runs_fuse_into_a_qlora_run_served_on_its_4bit_base(runs: Any, root: Path) -> None:
    """QLoRA parents: the adapters are combined on the full-precision base (A and B only), the fused run is a QLoRA
    run, and its deployment figures were timed on the 4-bit base it is served on."""
    a, b = runs["qlora-a"], runs["qlora-b"]
    result = fuse([a.path, b.path], [0.5, 0.5], "linear", runs_dir=root / "runs")
    fused = fused_run(result)
    assert fused.config()["method_name"] == "qlora" and fused.info().method == "qlora"  # type: ignore[index]
    _, got = adapter(fused.weights_dir)
    parents = [adapter(a.weights_dir), adapter(b.weights_dir)]
    for name, (fa, _) in got.items():
        want = total(math.sqrt(0.5 * scaling(c)) * t[name][0] for c, t in parents)
        assert torch.allclose(fa, want, atol=TOLERANCE), name
    figures = result["deployment"]
    assert figures["tokens_per_s"] > 0 and "not_measured" not in figures, figures
    assert torch.isfinite(stock_peft_logits(fused)).all()


async def test_runs_screen_and_comparison_show_the_fused_run_s_parents_and_figures(runs: Any, root: Path) -> None:
    from textual.widgets import DataTable

    from lf_tui.app import LfTuiApp
    from lf_tui.screens.compare_screen import CompareScreen
    from lf_tui.screens.runs_screen import RunsScreen
    from tests.tui_helpers import wait_for

    a, b = runs["a"], runs["b"]
    fused = fused_run(fuse([a.path, b.path], [0.5, 0.5], "cat", runs_dir=root / "runs"))
    expected = len(RunStore(root / "runs").list())
    app = LfTuiApp(runs_dir=root / "runs")
    async with app.run_test(size=(200, 45)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and
                       app.screen.query_one("#runs", DataTable).row_count == expected, what="runs listed")
        screen: Any = app.screen
        table = screen.query_one("#runs", DataTable)
        shown = dict(zip([str(k.value) for k in table.columns], table.get_row(fused.run_id)))
        figures = (fused.summary() or {})["deployment"]
        assert shown["derived_from"] == f"{a.run_id.split('-', 2)[2]}+{b.run_id.split('-', 2)[2]}"
        assert shown["adapter_bytes"].endswith("KiB") and shown["tokens_per_s"] != "—"
        assert dict(zip([str(k.value) for k in table.columns], table.get_row(a.run_id)))["derived_from"] == "—"
        screen.marked = {fused.run_id, a.run_id}
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and len(app.screen.records) == 2,
                       what="comparison")
        summary = app.screen.query_one("#compare-summary", DataTable)
        await wait_for(pilot, lambda: summary.row_count > 0, what="summary rows")
        rows = {str(summary.get_row_at(i)[0]): summary.get_row_at(i)[1:] for i in range(summary.row_count)}
        order = [str(c.label) for c in summary.columns.values()][1:]
        fused_column = order.index(fused.run_id)
        assert rows["fused from"][fused_column].startswith(f"0.5 x {a.run_id} + 0.5 x {b.run_id} (cat, rank 32)")
        assert rows["fused from"][1 - fused_column] == "—"
        assert all(rows["tokens/s"][i] not in ("—", "") for i in (0, 1)) and figures["tokens_per_s"] > 0
        assert rows["measured on"][fused_column].startswith("cpu (")
