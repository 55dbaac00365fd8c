"""KIF on a tiny model that has learned four fictitious authors: signatures, the gated hook,
distillation into LoRA, and the safety checks of ``forgetkit.unlearn.run.unlearn``."""

import hashlib
import json
import warnings
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import AutoModelForCausalLM

from forgetkit.data.records import QARecord, read_qa, write_qa
from forgetkit.data.synth import authors
from forgetkit.lm import models
from forgetkit.lm.activations import block_outputs
from forgetkit.lm.tokenize import QACollator, encode_records
from forgetkit.train.config import TrainConfig
from forgetkit.train.kl_to_base import answer_positions
from forgetkit.train.run import RUN_FILE, train
from forgetkit.unlearn.config import UnlearnConfig
from forgetkit.unlearn.kif import mine_signatures
from forgetkit.unlearn.known_subjects import UnknownSubjectWarning
from forgetkit.unlearn.run import SIGNATURES_FILE, unlearn
from forgetkit.unlearn.setting import build_setting, write_setting
from forgetkit.unlearn.signature import (
    Signatures,
    choose_layers,
    cosine,
    gate_thresholds,
    separation,
    signature,
)
from forgetkit.unlearn.suppression import suppress, suppressed

# ----------------------------------------------------------------------- the math, planted

def test_signature_recovers_a_planted_subject_direction():
    gen = torch.Generator().manual_seed(0)
    planted = F.normalize(torch.randn(32, generator=gen), dim=0)
    retain = torch.randn(200, 32, generator=gen) + 2.0  # an offset the centre must absorb
    subject = torch.randn(100, 32, generator=gen) + 2.0 + 4.0 * planted
    u, centre = signature(subject, retain)
    assert float(u @ planted) > 0.95 and torch.isclose(u.norm(), torch.tensor(1.0))
    assert torch.allclose(centre, retain.mean(0))


def test_layer_choice_keeps_the_layer_that_separates_held_out_prompts():
    gen = torch.Generator().manual_seed(1)
    planted = F.normalize(torch.randn(16, generator=gen), dim=0)

    def acts(n, shift):  # [n, 3 layers, 16]; only layer 2 (index 1) carries the subject
        x = torch.randn(n, 3, 16, generator=gen)
        x[:, 1] += shift * planted
        return x

    scores = separation(acts(20, 4.0), acts(40, 0.0), acts(20, 4.0), acts(40, 0.0))
    assert scores[1] > 10 * max(scores[0], scores[2])
    assert choose_layers(scores, [1, 2, 3], top=1) == [2]
    assert choose_layers([1.0, 1.0, 0.5], [4, 5, 6], top=2) == [4, 5]  # ties: earlier first


def test_suppress_projects_out_firing_tokens_and_leaves_the_rest_bitwise():
    gen = torch.Generator().manual_seed(2)
    u = F.normalize(torch.randn(1, 8, generator=gen), dim=1)
    centre = torch.randn(8, generator=gen)
    noise = torch.randn(6, 8, generator=gen) * 0.1
    noise -= (noise @ u.T) * u  # orthogonal to u
    h = centre + noise
    h[[1, 4]] += 5.0 * u[0]  # two tokens carry the subject
    out = suppress(h, centre, u, torch.tensor([0.5]))
    assert torch.equal(out[[0, 2, 3, 5]], h[[0, 2, 3, 5]])
    assert torch.allclose((out[[1, 4]] - centre) @ u[0], torch.zeros(2), atol=1e-5)
    half = suppress(h, centre, u, torch.tensor([0.5]), strength=0.5)
    assert torch.allclose((half[[1, 4]] - centre) @ u[0], torch.full((2,), 2.5), atol=1e-5)
    quiet = h[[0, 2]]
    assert suppress(quiet, centre, u, torch.tensor([0.5])) is quiet  # nothing fires: untouched


def test_gate_threshold_is_a_quantile_of_retain_similarity():
    cos = torch.linspace(-1, 1, 1001).unsqueeze(1).repeat(1, 2)
    assert torch.allclose(gate_thresholds(cos, 1.0), torch.ones(2))
    assert torch.allclose(gate_thresholds(cos, 0.9), torch.full((2,), 0.8), atol=1e-4)


# ----------------------------------------------------------------------------- the model

@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("unlearn")
    folder = write_setting(build_setting(4, 0.25, seed=0), root / "data")
    knows = train(TrainConfig(model=models.TINY, data=folder / "all.jsonl", method="full",
                              output=root / "knows", epochs=30, batch_size=8,
                              learning_rate=3e-3, lr_scheduler="constant", progress=False,
                              save_strategy="no"))
    return {"root": root, "forget": folder / "forget.jsonl", "retain": folder / "retain.jsonl",
            "model": str(knows)}


@pytest.fixture(scope="module")
def knows(setting):
    return models.load(setting["model"])


def _config(setting, out, **kw):
    base = dict(model=setting["model"], forget=setting["forget"], retain=setting["retain"],
                output=out, batch_size=4, progress=False, save_strategy="no")
    base.update(kw)
    return UnlearnConfig(**base)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def _answer_logp(model, tok, records, sig=None):
    batch = QACollator(tok.pad_token_id)(encode_records(tok, records))
    with torch.no_grad():
        if sig is None:
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits
        else:
            with suppressed(model, sig):
                logits = model(input_ids=batch["input_ids"],
                               attention_mask=batch["attention_mask"]).logits
    return F.log_softmax(logits.float(), -1)[answer_positions(batch["labels"])]


def _kl(p, q):
    return float((p.exp() * (p - q)).sum(-1).mean())


def test_mined_signature_separates_the_forget_subject(setting, knows):
    model, tok = knows
    forget, retain = read_qa(setting["forget"]), read_qa(setting["retain"])
    sig = mine_signatures(model, tok, forget, retain)
    assert sig.subjects == [forget[0].subject] and sig.layers == [1, 2]  # 2 blocks: both kept
    report = sig.report["subjects"][forget[0].subject]
    assert min(report["fisher"]) > 1.0  # held-out prompts of the subject stand apart
    for own, other in zip(report["fires_on_own_tokens"], report["fires_on_retain_tokens"],
                          strict=True):
        assert own > 10 * other
    pinned = mine_signatures(model, tok, forget, retain, layers=[2])
    assert pinned.layers == [2] and pinned.directions.shape == (1, 1, 64)


def test_hook_leaves_retain_activations_unchanged_and_removes_the_signature(setting, knows):
    model, tok = knows
    forget, retain = read_qa(setting["forget"]), read_qa(setting["retain"])

    def blocks(records, sig, hooked):
        batch = QACollator(tok.pad_token_id)(encode_records(tok, records))
        with suppressed(model, sig) if hooked else nullcontext():
            return block_outputs(model, sig.layers, batch["input_ids"], batch["attention_mask"])

    # Calibrated on these retain examples with quantile 1: no gate fires, bit for bit.
    strict = mine_signatures(model, tok, forget, retain, gate_quantile=1.0)
    plain, hooked = blocks(retain, strict, False), blocks(retain, strict, True)
    assert all(torch.equal(plain[layer], hooked[layer]) for layer in strict.layers)
    # With the default quantile, the first hooked block's firing tokens on the forget
    # examples lose the signature component; the other tokens stay as they were.
    sig = mine_signatures(model, tok, forget, retain)
    first = sig.layers[0]
    plain, hooked = blocks(forget, sig, False), blocks(forget, sig, True)
    cos = cosine(plain[first], sig.centres[0], sig.directions[:, 0])[..., 0]
    fire = cos > sig.thresholds[0, 0]
    assert fire.sum() >= 10
    component = (hooked[first] - sig.centres[0]) @ sig.directions[0, 0]
    assert component[fire].abs().max() < 1e-4
    assert torch.equal(hooked[first][~fire], plain[first][~fire])
    retain_plain, retain_hooked = blocks(retain, sig, False), blocks(retain, sig, True)
    changed = (retain_plain[first] != retain_hooked[first]).any(-1).float().mean()
    assert changed < 0.01  # retain text almost never fires the default gate


@pytest.fixture(scope="module")
def kif_run(setting):
    before = _digest(setting["root"] / "knows")
    out = unlearn(_config(setting, setting["root"] / "kif", kif_push=4.0,
                          learning_rate=2e-3, epochs=8))
    return out, before


def test_distillation_moves_the_unhooked_model_to_the_hooked_one(setting, knows, kif_run):
    out, _ = kif_run
    model, tok = knows
    sig = Signatures.load(out / SIGNATURES_FILE)
    forget, retain = read_qa(setting["forget"]), read_qa(setting["retain"])
    unlearned = AutoModelForCausalLM.from_pretrained(out)  # a plain checkpoint, no hook
    teacher = _answer_logp(model, tok, forget, sig)
    before = _kl(teacher, _answer_logp(model, tok, forget))
    after = _kl(teacher, _answer_logp(unlearned, tok, forget))
    assert before > 0.01 and after < 0.6 * before
    drift = _kl(_answer_logp(model, tok, retain), _answer_logp(unlearned, tok, retain))
    assert drift < 0.25 * before
    run = json.loads((out / RUN_FILE).read_text())
    assert run["notes"]["kif"]["layers"] == sig.layers
    assert run["config"]["method"] == "kif" and run["learning_rate"] == 2e-3
    assert (out / "adapter" / "adapter_config.json").is_file()


def test_input_model_is_never_modified(setting, kif_run):
    _, before = kif_run
    assert _digest(setting["root"] / "knows") == before
    with pytest.raises(ValueError, match="(is|holds) the input model"):
        unlearn(_config(setting, setting["model"], overwrite=True, method="ga", max_steps=1))
    with pytest.raises(ValueError, match="(is|holds) the input model"):
        unlearn(_config(setting, setting["root"], overwrite=True, method="ga", max_steps=1))
    assert _digest(setting["root"] / "knows") == before


def test_adapter_output_loads_on_the_input_model(setting, knows, tmp_path):
    out = unlearn(_config(setting, tmp_path / "a", adapter=True, max_steps=1))
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    assert not (out / "adapter").exists()
    base = AutoModelForCausalLM.from_pretrained(setting["model"])
    assert isinstance(PeftModel.from_pretrained(base, out), PeftModel)


def test_npo_starts_at_two_over_beta_log_two(setting, tmp_path):
    # Step 1 is at theta = ref: only if the cached reference lines up with the shuffled
    # examples does every example give exactly (2/beta) log 2.
    out = unlearn(_config(setting, tmp_path / "npo", method="npo", max_steps=1,
                          logging_steps=1, npo_beta=0.5))
    run = json.loads((out / RUN_FILE).read_text())
    first = next(h for h in run["log_history"] if "loss" in h)
    assert first["loss"] == pytest.approx(4 * 0.6931472, abs=1e-4)


def test_unseen_forget_subject_warns_nothing_to_forget(setting, tmp_path):
    stranger = authors(1, seed=99)[:5]
    forget = write_qa(read_qa(setting["forget"]) + stranger, tmp_path / "f.jsonl")
    with pytest.warns(UnknownSubjectWarning, match=f"{stranger[0].subject}.*nothing to forget"):
        out = unlearn(_config(setting, tmp_path / "o", forget=forget, method="ga", max_steps=1))
    notes = json.loads((out / RUN_FILE).read_text())["notes"]["forget_subjects"]
    assert notes["unknown"] == [stranger[0].subject]
    known = read_qa(setting["forget"])[0].subject
    assert notes["gain_nats_per_token"][known] > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownSubjectWarning)
        unlearn(_config(setting, tmp_path / "p", method="ga", max_steps=1))


@pytest.mark.parametrize("layers", [[3], [0], [1, 1]])
def test_layers_out_of_range_are_refused_before_training(setting, tmp_path, layers):
    with pytest.raises(ValueError, match="kif_layers"):
        unlearn(_config(setting, tmp_path / "o", kif_layers=layers))
    assert not (tmp_path / "o").exists()


def test_kif_needs_a_subject_per_forget_record(setting, tmp_path):
    forget = write_qa([QARecord(r.question, r.answer) for r in read_qa(setting["forget"])],
                      tmp_path / "f.jsonl")
    with pytest.raises(ValueError, match="needs a 'subject'"):
        unlearn(_config(setting, tmp_path / "o", forget=forget))


def test_signatures_are_reused_only_for_the_same_run(setting, tmp_path):
    path = tmp_path / "sig.safetensors"
    first = unlearn(_config(setting, tmp_path / "a", kif_signatures=path, max_steps=1))
    mtime = path.stat().st_mtime_ns
    unlearn(_config(setting, tmp_path / "b", kif_signatures=path, max_steps=1))
    assert path.stat().st_mtime_ns == mtime  # reused, not mined again
    assert (first / SIGNATURES_FILE).read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="mined for another"):
        unlearn(_config(setting, tmp_path / "c", kif_signatures=path, max_steps=1,
                        kif_gate_quantile=0.9))
