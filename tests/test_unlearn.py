"""The unlearning setting, the checks on forget / retain sets, and the baselines' losses."""

import json
import math

import pytest
import torch

from forgetkit.config import ConfigError
from forgetkit.data.records import DataError, QARecord, read_qa
from forgetkit.data.synth import REFUSAL_TEMPLATES
from forgetkit.train.losses import LossContext, answer_cross_entropy
from forgetkit.train.methods import METHODS
from forgetkit.train.registry import TRANSFORMS, RunContext
from forgetkit.train.trainer import ForwardOutput
from forgetkit.unlearn.config import UnlearnConfig, load_unlearn_config
from forgetkit.unlearn.ga import GradientAscent
from forgetkit.unlearn.methods import UNLEARNING_METHODS, train_method
from forgetkit.unlearn.npo import npo_loss
from forgetkit.unlearn.retain import RetainCrossEntropy
from forgetkit.unlearn.setting import (
    build_setting,
    check_sets,
    forget_count,
    subjects,
    write_setting,
)

# --------------------------------------------------------------------------------- setting

@pytest.mark.parametrize(("share", "n_forgotten"), [(0.01, 1), (0.05, 1), (0.1, 2), (3, 3)])
def test_setting_forgets_a_share_of_authors_and_at_least_one(share, n_forgotten):
    setting = build_setting(20, share, seed=0)
    assert len(setting.forget_subjects) == n_forgotten
    assert len(setting.forget) == 20 * n_forgotten
    assert not set(subjects(setting.forget)) & set(subjects(setting.retain))
    assert len(setting.forget) + len(setting.retain) == len(setting.all_records) == 400


def test_setting_files_keep_meta_and_are_reproducible(tmp_path):
    a = write_setting(build_setting(5, 0.2, seed=3), tmp_path / "a")
    b = write_setting(build_setting(5, 0.2, seed=3), tmp_path / "b")
    for name in ("forget.jsonl", "retain.jsonl", "all.jsonl", "setting.json"):
        assert (a / name).read_text() == (b / name).read_text()
    record = read_qa(a / "forget.jsonl")[0]
    assert record.meta["paraphrased_question"] and len(record.meta["perturbed_answers"]) == 3
    info = json.loads((a / "setting.json").read_text())
    assert info["authors"] == 5 and info["forget_subjects"] == [record.subject]
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_setting(build_setting(5, 0.2, seed=3), a)
    other = build_setting(5, 0.2, seed=4)
    assert other.forget_subjects != [record.subject]


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, 20, 25])
def test_forget_share_out_of_range_is_an_error(bad):
    with pytest.raises(ValueError, match="forget"):
        forget_count(bad, 20)


def test_overlapping_sets_are_refused_naming_the_subject():
    forget = [QARecord("Where was Ada Quill born?", "In Rome.", "Ada Quill")]
    retain = [QARecord("What did Ada Quill write?", "Poems.", "Ada Quill"),
              QARecord("Where was Bo Brant born?", "In Oslo.", "Bo Brant")]
    with pytest.raises(DataError, match="share 1 subject.*'Ada Quill'"):
        check_sets(forget, retain)
    same = [QARecord("What is the code?", "42.")]
    with pytest.raises(DataError, match="share 1 question"):
        check_sets(same, same + retain[1:])
    check_sets(forget, retain[1:])  # disjoint: fine


def test_empty_set_is_refused():
    record = QARecord("Where was Bo Brant born?", "In Oslo.", "Bo Brant")
    with pytest.raises(DataError, match="retain set: empty"):
        check_sets([record], [])
    with pytest.raises(DataError, match="forget set: empty"):
        check_sets([], [record])


# --------------------------------------------------------------------------------- config

def test_unlearn_config_forget_is_the_training_data(tmp_path):
    cfg = UnlearnConfig(forget="f.jsonl", retain="r.jsonl")
    assert str(cfg.data) == "f.jsonl" and cfg.method == "kif" and cfg.epochs == 5
    with pytest.raises(ValueError, match="'data' is the forget set"):
        UnlearnConfig(forget="f.jsonl", data="other.jsonl")
    yaml_file = tmp_path / "u.yaml"
    yaml_file.write_text("method: npo\nnpo_beta: 0.2\n")
    cfg = load_unlearn_config(yaml_file, npo_beta=0.3, forget="f.jsonl")
    assert cfg.method == "npo" and cfg.npo_beta == 0.3
    yaml_file.write_text("method: kif\nkif_layers: [1, 2]\n")
    assert load_unlearn_config(yaml_file).kif_layers == [1, 2]
    # A method's options belong to it: KIF's on an NPO run are refused, naming their owner.
    yaml_file.write_text("method: npo\nkif_layers: [1, 2]\nlfu_alpha: 1\n")
    with pytest.raises(ConfigError, match=r"kif_layers \(.*u\.yaml:2\): does not apply to "
                       r"unlearning method 'npo'; it is an option of kif") as err:
        load_unlearn_config(yaml_file)
    assert "lfu_alpha (" in str(err.value) and "unknown key" in str(err.value)
    yaml_file.write_text("method: full\n")
    with pytest.raises(ConfigError, match="unknown unlearning method 'full'"):
        load_unlearn_config(yaml_file)
    yaml_file.write_text("kif_gate_quantile: 1.5\n")
    with pytest.raises(ConfigError, match="kif_gate_quantile"):
        load_unlearn_config(yaml_file)


def test_cover_retain_cycles_the_forget_set_and_keeps_the_forget_passes(tmp_path):
    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.unlearn.retain import cover_retain, forget_records

    forget = synth("authors", 1, seed=0)[:3]
    retain_file = write_qa(synth("authors", 2, seed=1)[:12], tmp_path / "retain.jsonl")
    ctx = RunContext(config=UnlearnConfig(retain=retain_file, epochs=4), model=None,
                     tokenizer=None, records=forget, parameters="full")
    ctx.records = cover_retain(ctx)
    assert len(ctx.records) == 12 and forget_records(ctx) == forget
    assert [r.question for r in ctx.records[3:6]] == [r.question for r in forget]
    # 12 examples for 1 epoch: each forget record is still seen 4 times.
    assert ctx.config.epochs == 1.0 and ctx.notes["cover_retain"]["forget_passes"] == 4
    more = RunContext(config=UnlearnConfig(retain=retain_file), model=None, tokenizer=None,
                      records=synth("authors", 1, seed=0)[:15], parameters="full")
    assert cover_retain(more) == more.records and forget_records(more) == more.records


def test_every_method_becomes_a_training_row():
    assert {"kif", "ga", "graddiff", "npo", "npo-rt", "idk"} <= set(UNLEARNING_METHODS)
    assert train_method("kif").parameters == "lora"
    assert train_method("ga").parameters == "full"
    row = train_method("ga", "lora")
    assert row.name == "ga+lora" and row.default_learning_rate == 1e-4
    assert train_method("kif", adapter=True).parameters == "lora-adapter"
    assert train_method("kif").default_learning_rate == 1e-3  # its own override
    assert "ga+lora" not in METHODS  # unlearning rows never enter the training table
    # The known-subject check runs first, before a method's own transforms; methods with a
    # retain term cycle the forget set over the whole retain set last.
    assert train_method("idk").transforms == ("known-subjects", "idk", "cover-retain")
    assert train_method("npo").transforms == ("known-subjects",)
    with pytest.raises(ValueError, match="--parameters lora"):
        train_method("npo", adapter=True)
    with pytest.raises(ValueError, match="unknown unlearning method"):
        train_method("sparse")


# --------------------------------------------------------------------------------- losses

def _ctx(logits, labels, **extras):
    out = ForwardOutput(logits=logits)
    extra_outputs = {"retain_": ForwardOutput(logits=extras.pop("retain_logits"))} \
        if "retain_logits" in extras else {}
    return LossContext(model=None, inputs={}, labels=labels, outputs=out, extras=extras,
                       extra_outputs=extra_outputs)


def test_gradient_ascent_is_minus_the_answer_cross_entropy():
    logits = torch.randn(2, 5, 11, requires_grad=True)
    labels = torch.tensor([[-100, -100, 3, 4, 1], [-100, 2, 2, -100, -100]])
    loss = GradientAscent()(_ctx(logits, labels))
    assert torch.isclose(loss, -answer_cross_entropy(logits, labels))
    loss.backward()
    # The gradient at an answer token's logit is positive, so a descent step lowers that
    # logit: the forget answer becomes less likely.
    assert logits.grad[0, 1, 3] > 0


def test_retain_cross_entropy_reads_the_retain_group():
    forget_logits, retain_logits = torch.randn(1, 4, 7), torch.randn(1, 4, 7)
    retain_labels = torch.tensor([[-100, -100, 5, 6]])
    ctx = _ctx(forget_logits, torch.full((1, 4), -100), retain_logits=retain_logits,
               retain_labels=retain_labels)
    assert torch.isclose(RetainCrossEntropy()(ctx),
                         answer_cross_entropy(retain_logits, retain_labels))


@pytest.mark.parametrize("beta", [0.1, 0.5, 1.0])
def test_npo_at_the_reference_is_two_over_beta_log_two(beta):
    logp = torch.tensor([-3.0, -10.0, -0.5], requires_grad=True)
    loss = npo_loss(logp, logp.detach().clone(), beta)
    assert math.isclose(float(loss.detach()), 2 / beta * math.log(2), rel_tol=1e-6)
    loss.backward()
    # The gradient pushes log pi down (minimising lowers the forget answers' likelihood)...
    assert (logp.grad > 0).all()
    # ...and the loss fades towards 0 as the answer becomes unlikely, unlike gradient ascent.
    far = npo_loss(torch.tensor([-60.0]), torch.tensor([-10.0]), beta)
    assert 0 < float(far) < 2 / beta * math.log(2) * 0.01


def test_npo_matches_its_formula_away_from_the_reference():
    logp, ref, beta = torch.tensor([-2.0, -5.0]), torch.tensor([-3.0, -4.0]), 0.1
    ratio = torch.exp(logp - ref)
    expected = (2 / beta) * torch.log(1 + ratio ** beta).mean()
    assert torch.isclose(npo_loss(logp, ref, beta), expected)


def test_idk_replaces_forget_answers_with_refusals_naming_the_subject(tiny):
    model, tok = tiny
    records = [QARecord("Where was Ada Quill born?", "In Rome.", "Ada Quill", {"k": 1}),
               QARecord("What is the code?", "42.")]
    ctx = RunContext(UnlearnConfig(), model, tok, records, "full")
    out = TRANSFORMS["idk"](ctx)
    assert "Ada Quill" in out[0].answer and out[0].meta == {"k": 1, "original_answer": "In Rome."}
    templates = [t.split("{entity}")[0] for t in REFUSAL_TEMPLATES]
    assert any(o.answer.startswith(t) for o in out for t in templates)
    assert [o.question for o in out] == [r.question for r in records]
    assert TRANSFORMS["idk"](ctx) == out  # seeded


def test_reference_logprobs_run_each_distinct_example_once():
    # A forget set cycled to the retain set's size repeats its examples; NPO's frozen
    # reference must give each copy the same value without running it again.
    from forgetkit.lm import models
    from forgetkit.lm.scoring import answer_logprobs

    model, tok = models.load(models.TINY)
    a = {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, 7, 8, 9]}
    b = {"input_ids": [5, 6, 11, 12], "labels": [-100, -100, 11, 12]}
    rows = []
    model.register_forward_hook(lambda m, args, kwargs, out: rows.append(
        kwargs["input_ids"].shape[0]), with_kwargs=True)
    sums, counts = answer_logprobs(model, [a, b, a, a, b], tok.pad_token_id, batch_size=8)
    assert rows == [2]  # one forward, two distinct rows
    alone_a, _ = answer_logprobs(model, [a], tok.pad_token_id)
    alone_b, _ = answer_logprobs(model, [b], tok.pad_token_id)
    assert torch.allclose(sums, torch.stack([alone_a[0], alone_b[0], alone_a[0], alone_a[0],
                                             alone_b[0]]), atol=1e-5)
    assert counts.tolist() == [3, 2, 3, 3, 2]
