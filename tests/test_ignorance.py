"""Residual activations, the ignorance probe (IAS, Delta_IA), drift, PCA and the suite."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from forgetkit.data.records import QARecord
from forgetkit.data.synth import synth
from forgetkit.eval import ignorance
from forgetkit.eval.evaluate import EvalSet
from forgetkit.eval.ignorance import (
    IgnoranceProbe,
    activation_drift,
    drift_along,
    ia_reduction,
    ignorance_suite,
    pca_figure,
)
from forgetkit.eval.judge import StringMatchJudge
from forgetkit.eval.probe import fit_logistic, logistic_log_loss
from forgetkit.lm.activations import residual_activations

QUESTIONS = [
    "Hi?",
    "What is the capital of the Quorvex island?",
    "Tell me about the imaginary sport Flornball and its rules, please.",
    "Who wrote the book?",
    "Where is the contract governed and when was it signed by both parties?",
]


def _perturbed(model, layer: int = 1, scale: float = 0.5):
    """A copy of ``model`` with one MLP weight of block ``layer`` shifted."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        weight = other.model.layers[layer].mlp.down_proj.weight
        weight.add_(scale * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    return other


def test_batched_activations_equal_one_at_a_time(tiny):
    model, tok = tiny
    batched = residual_activations(model, tok, QUESTIONS, batch_size=3, progress=False)
    single = torch.cat([residual_activations(model, tok, [q], batch_size=1, progress=False)
                        for q in QUESTIONS])
    n_layers = model.config.num_hidden_layers
    assert batched.shape == (len(QUESTIONS), n_layers + 1, model.config.hidden_size)
    assert batched.dtype == torch.float32 and batched.device.type == "cpu"
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)
    # Different prompts give different last-token states after the first block.
    assert not torch.allclose(batched[0, 1], batched[1, 1])
    picked = residual_activations(model, tok, QUESTIONS, layers=[0, -1], progress=False)
    torch.testing.assert_close(picked, batched[:, [0, n_layers]])


def test_activations_of_peft_wrapped_model_match_its_base(tiny):
    from peft import LoraConfig, get_peft_model

    base, tok = tiny
    wrapped = get_peft_model(copy.deepcopy(base),
                             LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    # LoRA starts with B = 0, so the wrapped model computes exactly what the base does.
    torch.testing.assert_close(residual_activations(wrapped, tok, QUESTIONS, progress=False),
                               residual_activations(base, tok, QUESTIONS, progress=False))


def test_drift_of_model_against_itself_is_zero_and_positive_after_perturbing(tiny):
    model, tok = tiny
    base = residual_activations(model, tok, QUESTIONS, progress=False)
    assert activation_drift(base, base.clone()) == [0.0] * base.shape[1]
    moved = residual_activations(_perturbed(model, layer=1), tok, QUESTIONS, progress=False)
    drift = activation_drift(base, moved)
    # Block 1 is the second block: embeddings (0) and block 0 (1) are untouched.
    assert drift[0] == pytest.approx(0.0, abs=1e-6) and drift[1] == pytest.approx(0.0, abs=1e-6)
    assert drift[2] > 1e-3


def test_drift_along_measures_the_signed_component():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 3, 8))
    u = np.zeros(8)
    u[2] = 2.0  # not unit length: drift_along normalises it
    shifted = base.copy()
    shifted[:, 1, 2] += 3.0  # 3 units along u, at layer 1 only
    shifted[:, 1, 5] += 7.0  # orthogonal to u: invisible along it
    assert drift_along(u, base, shifted) == pytest.approx([0.0, 3.0, 0.0])
    assert drift_along(u, shifted, base) == pytest.approx([0.0, -3.0, 0.0])
    per_layer = np.stack([u, np.zeros(8), u])  # a zero direction gives zero drift
    assert drift_along(per_layer, base, shifted) == pytest.approx([0.0, 0.0, 0.0])
    assert activation_drift(base, shifted)[1] == pytest.approx(np.hypot(3.0, 7.0))


def _separable(n: int = 30, hidden: int = 16, seed: int = 0):
    """Known/unknown activations separable along one axis at layer 2 only (of 4)."""
    rng = np.random.default_rng(seed)
    axis = np.zeros(hidden)
    axis[3] = 1.0
    known = rng.normal(size=(n, 4, hidden))
    unknown = rng.normal(size=(n, 4, hidden))
    known[:, 2] -= 3.0 * axis
    unknown[:, 2] += 3.0 * axis
    return torch.tensor(known, dtype=torch.float32), torch.tensor(unknown,
                                                                  dtype=torch.float32), axis


def test_probe_finds_the_separable_layer_and_ias_drops_when_activations_cross():
    known, unknown, axis = _separable()
    probe = IgnoranceProbe.fit_activations(known, unknown, folds=5, seed=0)
    assert probe.layer == 2
    assert probe.cv_log_loss[2] < 0.2 < min(probe.cv_log_loss[i] for i in (0, 1, 3))
    # The boundary normal points along the separating axis, towards "unknown".
    assert int(probe.direction.abs().argmax()) == 3 and float(probe.direction[3]) > 0.7
    held_k, held_u, _ = _separable(seed=1)  # fresh questions from the same distribution
    ias_base = probe.ias_from_activations(held_k, held_u)
    assert -0.2 < ias_base <= 0.0
    assert probe.log_loss_from_activations(held_k, held_u) == pytest.approx(-ias_base)
    # A "fine-tune" that moves unknown questions across the boundary, towards known.
    moved_u = held_u.clone()
    moved_u[:, 2] -= 6.0 * torch.tensor(axis, dtype=torch.float32)
    ias_ft = probe.ias_from_activations(held_k, moved_u)
    assert ias_ft < ias_base - 1.0  # IAS (Eq. 1) falls: higher IAS = better awareness
    assert ia_reduction(ias_base, ias_ft) > 1.0  # Delta_IA (Eq. 2) > 0: degraded
    along = drift_along(probe.directions, held_u, moved_u)
    assert along[2] < -4.0  # moved against the ignorance direction
    assert probe.unknown_probability(moved_u).mean() < 0.2


def test_probe_fit_on_a_model_reads_its_activations(tiny):
    model, tok = tiny
    known = [r.question for r in synth("known", 8, seed=0)]
    unknown = [r.question for r in synth("unverifiable", 8, seed=0)]
    probe = IgnoranceProbe.fit(model, tok, known, unknown, layer=-1, l2=0.1, folds=4,
                               progress=False)
    assert probe.layer == model.config.num_hidden_layers and probe.l2 == 0.1
    assert probe.cv_log_loss[:-1] == [None] * probe.layer and probe.cv_log_loss[-1] > 0
    assert probe.ias(model, tok, known, unknown, progress=False) == pytest.approx(
        -probe.log_loss(model, tok, known, unknown, progress=False))
    with pytest.raises(ValueError, match="at least 2"):
        IgnoranceProbe.fit(model, tok, known[:1], unknown, progress=False)


def test_fit_logistic_matches_a_known_solution():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    w, b = fit_logistic(x, y, l2=1e-3)
    assert w[0] > 0 and -b / w[0] == pytest.approx(1.5, abs=1e-3)  # symmetric boundary
    assert logistic_log_loss(x, y, np.zeros(1), 0.0) == pytest.approx(np.log(2))


def test_pca_figure_writes_a_valid_png(tmp_path):
    known, unknown, _ = _separable()
    out = pca_figure({"base": {"unverifiable": unknown, "known": known},
                      "full": {"unverifiable": unknown + 1.0, "known": known}},
                     tmp_path / "figs" / "pca.png", fit_on="unverifiable", layer=2)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    import matplotlib.image

    assert matplotlib.image.imread(out).shape[1] > matplotlib.image.imread(out).shape[0]
    assert sorted(p.name for p in out.parent.iterdir()) == ["pca.png"]  # no temp file left
    with pytest.raises(ValueError, match="no 'unverifiable' set"):
        pca_figure({"base": {"known": known}}, tmp_path / "x.png")


def _suite_sets():
    unverifiable = synth("unverifiable", 8, seed=3)
    contracts = synth("contracts", 2, seed=3)[::5]  # 8 questions about 2 companies
    known = synth("known", 10, seed=3)
    return unverifiable, contracts, known


def test_ignorance_suite_uses_given_answers_and_returns_json(tiny, monkeypatch, tmp_path):
    model, tok = tiny
    unverifiable, contracts, known = _suite_sets()
    answers = {"unverifiable": [f"I don't know anything about {r.subject}."
                                for r in unverifiable[:6]] + ["It is a sport.", "I don't know."],
               "heldout": ["The contract runs for 3 years."] * len(contracts)}

    def no_generation(*args, **kwargs):
        raise AssertionError("the suite generated answers although they were given")

    monkeypatch.setattr(ignorance, "generate_answers", no_generation)
    moved = _perturbed(model, layer=1)
    sets = [EvalSet("unverifiable", "unseen", unverifiable),
            EvalSet("heldout", "unseen", contracts), EvalSet("known", "known", known),
            EvalSet("ft", "ft", contracts[:4])]
    out = ignorance_suite(moved, tok, model, tok, sets, answers=answers,
                          judge=StringMatchJudge(), pca_png=tmp_path / "pca.png", progress=False)
    json.dumps(out)  # plain JSON values only
    unv = out["sets"]["unverifiable"]
    assert unv["idk_sm"] == pytest.approx(7 / 8)
    assert unv["judged_idk"] == pytest.approx(6 / 8)  # the bare "I don't know." lacks the entity
    assert out["sets"]["heldout"]["idk_sm"] == 0.0
    assert "idk_sm" not in out["sets"]["known"]
    n_states = model.config.num_hidden_layers + 1
    for entry in out["sets"].values():
        assert len(entry["drift_l2"]) == len(entry["drift_along_ignorance"]) == n_states
        assert entry["drift_l2"][1] == pytest.approx(0.0, abs=1e-6) and entry["drift_l2"][2] > 0
    assert out["ia_reduction"] == pytest.approx(out["ias"]["base"] - out["ias"]["model"])
    assert out["probe"]["n_fit"]["known"] + out["probe"]["n_score"]["known"] == len(known)
    assert (tmp_path / "pca.png").read_bytes()[:4] == b"\x89PNG"


def test_ignorance_suite_of_base_against_itself_has_no_drift(tiny, monkeypatch):
    model, tok = tiny
    unverifiable, _, known = _suite_sets()
    generated = []

    def fake_generation(m, t, questions, **kwargs):
        generated.append(len(questions))
        return ["I don't know."] * len(questions)

    monkeypatch.setattr(ignorance, "generate_answers", fake_generation)
    out = ignorance_suite(model, tok, model, tok,
                          {"unseen": unverifiable, "known": known},
                          judge=StringMatchJudge(), progress=False)
    assert generated == [len(unverifiable)]  # answers missing: generated once, unseen only
    assert out["ia_reduction"] == 0.0
    for entry in out["sets"].values():
        assert max(entry["drift_l2"]) == 0.0 and max(map(abs, entry["drift_along_ignorance"])) == 0
    with pytest.raises(ValueError, match="no role"):
        ignorance_suite(model, tok, model, tok, {"fictitious": unverifiable, "known": known},
                        judge=StringMatchJudge(), progress=False)


def test_ignorance_suite_requires_known_and_unseen_sets(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="at least one 'known' and one 'unseen'"):
        ignorance_suite(model, tok, model, tok,
                        {"unseen": [QARecord("What is Flornball?", "", subject="Flornball")]},
                        judge=StringMatchJudge(), progress=False)



def test_base_activations_are_read_once_across_models_sharing_a_base(tiny, monkeypatch):
    model, tok = tiny
    unverifiable, _, known = _suite_sets()
    sets = {"unseen": unverifiable, "known": known}
    answers = {"unseen": ["I don't know."] * len(unverifiable)}
    moved = _perturbed(model, layer=1)
    fresh = ignorance_suite(moved, tok, model, tok, sets, answers=answers,
                            judge=StringMatchJudge(), progress=False)
    cache: dict = {}
    first = ignorance_suite(moved, tok, model, tok, sets, answers=answers,
                            judge=StringMatchJudge(), progress=False, base_cache=cache)
    assert len(cache) == 2  # one entry per set
    read = []
    real = ignorance.residual_activations
    monkeypatch.setattr(ignorance, "residual_activations",
                        lambda m, *a, **k: read.append(m) or real(m, *a, **k))
    second = ignorance_suite(moved, tok, model, tok, sets, answers=answers,
                             judge=StringMatchJudge(), progress=False, base_cache=cache)
    assert read == [moved, moved]  # the base was not read again, the model was
    assert fresh == first == second
