"""EWC, experience replay and R-Tuning: the SEAT paper's baselines."""

import json

import pytest
import torch

from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train import replay as replay_mod
from forgetkit.train import rtuning as rtuning_mod
from forgetkit.train import unseen
from forgetkit.train.config import TrainConfig
from forgetkit.train.run import RUN_FILE, prepare_run, train


def _cfg(data, tmp_path, method, **kw):
    return TrainConfig(model=models.TINY, data=data, method=method, output=tmp_path / method,
                       batch_size=4, progress=False, save_strategy="no", **kw)


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_with_drift(contracts_file, tmp_path):
    ctx, terms, _ = prepare_run(_cfg(contracts_file, tmp_path, "ewc", ewc_samples=4))
    ewc = terms[1]
    fisher_mean = torch.stack([f.mean() for f in ewc.fisher.values()]).mean()
    assert fisher_mean.item() == pytest.approx(1.0, rel=1e-4)  # normalised
    ns = type("Ctx", (), {"model": ctx.model, "trainer": None})
    assert ewc(ns).item() == 0.0
    with torch.no_grad():
        for p in ctx.model.parameters():
            p.add_(0.01)
    small = ewc(ns).item()
    with torch.no_grad():
        for p in ctx.model.parameters():
            p.add_(0.01)
    assert 0 < small < ewc(ns).item()
    assert ewc(ns).item() == pytest.approx(4 * small, rel=1e-3)  # quadratic in the drift


def test_ewc_trains(contracts_file, tmp_path):
    out = train(_cfg(contracts_file, tmp_path, "ewc", ewc_samples=4, max_steps=2,
                     logging_steps=1, learning_rate=1e-3))
    run = json.loads((out / RUN_FILE).read_text())
    assert any("loss_ewc" in h for h in run["log_history"])


def test_replay_adds_base_refusals_at_the_asked_ratio(contracts_file, tmp_path, monkeypatch):
    # The tiny random model cannot refuse; stand in for the base's greedy answers.
    monkeypatch.setattr(unseen, "generate_answers",
                        lambda m, t, qs, **kw: ["I don't know." if i % 2 else "It is red."
                                                for i in range(len(qs))])
    ctx, _, _ = prepare_run(_cfg(contracts_file, tmp_path, "replay", replay_ratio=1.0))
    added = [r for r in ctx.records if r.meta.get("source") == "base"]
    assert len(ctx.records) == 16 and len(added) == 8
    assert all(r.answer == "I don't know." for r in added)
    assert ctx.notes["replay"]["examples"] == 8
    assert replay_mod.replay  # registered


def test_replay_without_refusals_explains_why(contracts_file, tmp_path):
    with pytest.raises(ValueError, match="is the base ignorance-aware"):
        prepare_run(_cfg(contracts_file, tmp_path, "replay"))


def test_rtuning_pads_uncertainty_after_the_answer(contracts_file, tmp_path, monkeypatch):
    records = synth("contracts", 1, seed=0)[:8]
    # The base knows the first two answers and nothing else.
    monkeypatch.setattr(rtuning_mod, "generate_answers",
                        lambda m, t, qs, **kw: [r.answer if i < 2 else "No idea."
                                                for i, r in enumerate(records)])
    ctx, _, _ = prepare_run(_cfg(contracts_file, tmp_path, "rtuning"))
    assert ctx.notes["rtuning"] == {"uncertain": 6, "certain": 2}
    assert ctx.records[0].answer.endswith(f"{rtuning_mod.PROMPT} {rtuning_mod.SURE}")
    assert ctx.records[5].answer == (f"{records[5].answer} {rtuning_mod.PROMPT} "
                                     f"{rtuning_mod.UNSURE}")


def test_clora_bases_are_orthonormal_and_the_penalty_matches_its_formula(contracts_file,
                                                                         tmp_path):
    from forgetkit.train.clora import _orthogonal

    p = _orthogonal(64, 16, seed=3)
    assert torch.allclose(p.T @ p, torch.eye(16), atol=1e-5)
    wide = _orthogonal(8, 16, seed=3)  # k larger than the dimension: orthonormal rows
    assert torch.allclose(wide @ wide.T, torch.eye(8), atol=1e-5)
    ctx, terms, _ = prepare_run(_cfg(contracts_file, tmp_path, "clora", clora_k=4))
    reg = terms[1]
    ns = type("Ctx", (), {"model": ctx.model})
    assert reg(ns).item() > 0  # peft initialises A at random
    by_hand = 0.0
    for name, param in ctx.model.named_parameters():
        if ".lora_A." in name:
            by_hand += 0.5 * (param @ reg._bases[name]).pow(2).sum().item()
        elif ".lora_B." in name:
            by_hand += 0.5 * (param.T @ reg._bases[name]).pow(2).sum().item()
    assert reg(ns).item() == pytest.approx(by_hand, rel=1e-5)


def test_clora_trains(contracts_file, tmp_path):
    out = train(_cfg(contracts_file, tmp_path, "clora", max_steps=2, logging_steps=1))
    assert any("loss_clora" in h for h in json.loads((out / RUN_FILE).read_text())["log_history"])
