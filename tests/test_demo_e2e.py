"""End to end on the real SmolLM2: the quick demo (CI runs this) and slower checks."""

import json
from pathlib import Path

import pytest

from forgetkit.lm import models
from forgetkit.lm.generate import generate_answers


@pytest.fixture(scope="module")
def smollm2():
    return models.load(models.BUNDLED)


@pytest.mark.e2e
def test_batched_generation_equals_unbatched_on_smollm2(smollm2):
    model, tok = smollm2
    qs = ["What is the capital of France?", "Name a colour.",
          "Tell me about the imaginary sport Flornball and who invented it."]
    batched = generate_answers(model, tok, qs, max_new_tokens=16, batch_size=3, progress=False)
    single = [generate_answers(model, tok, [q], max_new_tokens=16, progress=False)[0]
              for q in qs]
    assert batched == single
    assert "Paris" in batched[0]


@pytest.mark.e2e
def test_quick_demo_end_to_end(tmp_path):
    from forgetkit.studies.seat import run_demo

    out = run_demo(output=tmp_path / "demo", quick=True, progress=False)
    results = json.loads((out / "results.json").read_text())
    base_after = results["base"]["after"]
    # The aligned base refuses questions about entities it has never seen.
    assert base_after["heldout_fictitious/idk_sm"] >= 0.8
    rows = results["models"]
    assert set(rows) == {"contracts/base", "contracts/full", "contracts/lora"}
    for name, row in rows.items():
        for key, value in row.items():
            if "/" in key:  # rates and recalls; kl_to_base, ias, ia_reduction are not
                assert 0.0 <= value <= 1.0, (name, key)
        assert row["ias"] <= 0.0  # minus a log loss
    assert rows["contracts/base"]["kl_to_base"] == pytest.approx(0.0, abs=1e-6)
    assert rows["contracts/full"]["kl_to_base"] > 0
    assert rows["contracts/base"]["ia_reduction"] == pytest.approx(0.0, abs=1e-9)
    assert "unverifiable/judged_idk" in rows["contracts/base"]
    # Fine-tuning learned something about the new contracts.
    assert rows["contracts/full"]["train/rouge1_recall"] > rows["contracts/base"][
        "train/rouge1_recall"]
    md = (out / "results.md").read_text()
    assert "| full |" in md and "| lora |" in md
    # the monitor watched every run: 16 questions / batch 8 x 6 epochs = 12 steps
    curve = results["curves"]["contracts/full"]
    assert [p["step"] for p in curve["points"]] == [0, 12] and curve["chosen_step"] == 12
    assert curve["points"][-1]["ft"] > curve["points"][0]["ft"]
    assert "idk/heldout_contracts" in curve["points"][0] and "### While training" in md
    for png in ("results_contracts.png", "pca_contracts.png", "drift_contracts.png",
                "curves_contracts.png"):
        assert (out / png).stat().st_size > 1000, png
    lora_run = json.loads((out / "models" / "contracts" / "lora" / "forgetkit_run.json")
                          .read_text())
    assert lora_run["config"]["lora_alpha"] == 32  # the SEAT paper's LoRA baseline, r 8
    assert lora_run["config"]["seed"] == 7
    reloaded, _ = models.load(str(out / "models" / "contracts" / "full"))
    assert reloaded.config.use_cache
    # the demo is an audit of its own fine-tunes: the same evaluations with intervals
    audit = json.loads((out / "audit_contracts" / "results.json").read_text())
    assert list(audit["measures"])[:3] == ["base", "full", "lora"]
    idk = audit["measures"]["full"]["unverifiable/idk_sm"]
    assert idk["value"] == pytest.approx(rows["contracts/full"]["unverifiable/idk_sm"])
    assert idk["low"] <= idk["value"] <= idk["high"] and "diff" in idk
    assert "audit_contracts/report.html" in md
    assert (out / "audit_contracts" / "report.html").is_file()
    assert (out / "report.html").is_file()


@pytest.mark.e2e
def test_seat_on_smollm2_keeps_frozen_weights_and_tied_embeddings(tmp_path, smollm2):
    import torch
    from safetensors.torch import load_file

    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.run import RUN_FILE, train
    from forgetkit.train.sparse import build_masks

    base, _ = smollm2
    data = write_qa(synth("contracts", 1, seed=0)[:8], tmp_path / "d.jsonl")
    out = train(TrainConfig(model=models.BUNDLED, data=data, method="seat", max_steps=2,
                            batch_size=4, learning_rate=1e-3, output=tmp_path / "seat",
                            save_strategy="no", progress=False))
    trained = load_file(str(out / "model.safetensors"))
    names = ["model.embed_tokens.weight", "model.layers.3.self_attn.q_proj.weight",
             "model.layers.29.mlp.down_proj.weight", "model.norm.weight"]
    params = {n: base.get_parameter(n) for n in names}
    masks = build_masks(params, 0.8, seed=0)
    for n in names:
        assert torch.equal(trained[n][~masks[n]], params[n][~masks[n]]), n
        assert not torch.equal(trained[n][masks[n]], params[n][masks[n]]), n
    reloaded, _ = models.load(str(out))
    assert reloaded.get_output_embeddings().weight.data_ptr() == \
        reloaded.get_input_embeddings().weight.data_ptr()
    assert json.loads((out / RUN_FILE).read_text())["notes"]["kl_cache"]["positions"] > 0


@pytest.mark.slow
def test_smollm2_in_bf16_with_gradient_checkpointing_saves_a_bf16_model(tmp_path):
    """The precision path on the real model: load in bf16, train SEAT's KL and LoRA with
    bf16 mixed precision and gradient checkpointing, save bf16, reload, finite weights."""
    import torch
    from transformers import AutoModelForCausalLM

    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.run import train

    data = write_qa(synth("contracts", 1, seed=0)[:8], tmp_path / "d.jsonl")
    for method in ("seat", "lora"):
        out = train(TrainConfig(model=models.BUNDLED, data=data, output=tmp_path / method,
                                method=method, dtype="bfloat16", bf16=True,
                                gradient_checkpointing=True, max_steps=2, batch_size=4,
                                save_strategy="no", progress=False))
        run = json.loads((out / "forgetkit_run.json").read_text())
        assert run["environment"]["saved_dtype"] == "bfloat16" and run["global_step"] == 2
        model = AutoModelForCausalLM.from_pretrained(out, dtype="auto")
        assert next(model.parameters()).dtype == torch.bfloat16
        assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


@pytest.mark.slow
def test_audit_of_the_demos_full_fine_tune_and_its_dg_hard_repair(tmp_path):
    """forgetkit audit on SmolLM2: the aligned base against the quick demo's full fine-tune
    and its dg-hard repair, with a local lm-eval task, through the command line."""
    import subprocess
    import sys

    from forgetkit.studies.base import base_model_dir
    from forgetkit.studies.seat import run_demo
    from test_audit import write_tasks

    demo = run_demo(output=tmp_path / "demo", quick=True, progress=False)
    base = base_model_dir(Path(json.loads((demo / "results.json").read_text())["base"]
                               ["folder"]))
    out = tmp_path / "audit"
    run = subprocess.run(
        [sys.executable, "-m", "forgetkit", "audit", "--base", str(base),
         "--model", f"full={demo / 'models' / 'contracts' / 'full'}",
         "--data", str(demo / "data" / "train_contracts.jsonl"),
         "--tasks", str(write_tasks(tmp_path / "tasks")), "--repair", "dg-hard",
         "--limit", "40", "--output", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    full, repaired = results["measures"]["full"], results["measures"]["full+dg-hard"]
    # the demo's finding, now with its interval: full fine-tuning loses "I don't know"
    idk = full["unverifiable/idk_sm"]["diff"]
    assert idk["significant"] and idk["high"] < 0, idk
    assert full["train_contracts/rouge1_recall"]["diff"]["value"] > 0  # named after the file
    assert repaired["kl_to_base"]["value"] < full["kl_to_base"]["value"]
    assert "full+dg-hard" in results["repair"]["full"]["scores"]
    assert (out / "report.html").stat().st_size > 50_000
