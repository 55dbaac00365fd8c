"""LfU: consistency under one ascent step, with one backward per step (train/lfu.py)."""

import copy
import json

import pytest
import torch
from peft import get_peft_model
from transformers import TrainerCallback

from forgetkit.config import ConfigError
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig, load_train_config
from forgetkit.train.lfu import (
    LoRAAuxiliary,
    RepSAuxiliary,
    ascent_step,
    consistency,
    layer_indices,
)
from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.run import RUN_FILE, prepare_run, train
from forgetkit.train.select_lora import LoraOptions, lora_config


@pytest.fixture
def contracts_file(tmp_path):
    return write_qa(synth("contracts", 1, seed=0)[:8], tmp_path / "train.jsonl")


def _train(data, tmp_path, method, callbacks=None, **kw):
    torch.manual_seed(0)  # peft initialises the adapters from the global RNG
    kw = {"max_steps": 4, "learning_rate": 1e-3, **kw}
    out = train(TrainConfig(model=models.TINY, data=data, method=method,
                            output=tmp_path / method, overwrite=True, batch_size=4,
                            logging_steps=1, save_strategy="no", progress=False, **kw),
                callbacks=callbacks)
    return json.loads((out / RUN_FILE).read_text())


def _term_log(run, key="loss_lfu"):
    return [h[key] for h in run["log_history"] if key in h]


@pytest.mark.parametrize("method", ["lfu-lora", "lfu-reps"])
@pytest.mark.parametrize("direction", ["prev-ce", "same-step"])
def test_consistency_is_exactly_zero_when_alpha_is_zero(contracts_file, tmp_path, method,
                                                        direction):
    flat = _train(contracts_file, tmp_path, method, lfu_alpha=0.0, lfu_direction=direction)
    assert len(_term_log(flat)) == 4 and all(v == 0.0 for v in _term_log(flat))
    assert flat["notes"]["lfu"]["stats"]["perturbed_forwards"] == 0
    pushed = _train(contracts_file, tmp_path, method, lfu_alpha=0.1, lfu_direction=direction)
    values, stats = _term_log(pushed), pushed["notes"]["lfu"]["stats"]
    if direction == "prev-ce":
        assert values[0] == 0.0  # hooks are installed at the first loss call
        assert stats["perturbed_forwards"] < 4
    else:  # no earlier gradient needed: every step is perturbed, the first one too
        assert values[0] > 0
        assert stats["perturbed_forwards"] == stats["forwards"] == 4
    assert all(v > 0 for v in values[2:])


def _peft_tiny():
    torch.manual_seed(0)
    model, _ = models.load(models.TINY)
    model = get_peft_model(model, lora_config(LoraOptions()))
    with torch.no_grad():  # non-zero B, so that A has a gradient too
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model.train()


def _batch(rows=3, width=20, seed=1):
    ids = torch.randint(5, 500, (rows, width), generator=torch.Generator().manual_seed(seed))
    labels = ids.clone()
    labels[:, :8] = -100
    return ids, labels


def _examples(ids, labels):
    return [{"input_ids": i.tolist(), "labels": lab.tolist()}
            for i, lab in zip(ids, labels, strict=True)]


def test_lora_hooks_rebuild_the_clean_rows_ce_gradient():
    model = _peft_tiny()
    ids, labels = _batch()
    weights = {n: p for n, p in model.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(answer_cross_entropy(model(input_ids=ids).logits, labels),
                                list(weights.values()))
    reference = dict(zip(weights, grads, strict=True))
    # The same step under same-step, on a twin: its g is this step's CE gradient.
    twin = copy.deepcopy(model)
    same = LoRAAuxiliary(0.1, "same-step", seed=0)
    same.remember_labels(_examples(ids, labels))
    same.attach(twin, group=1, n_groups=2)
    twin(input_ids=torch.cat([ids, ids]))
    aux = LoRAAuxiliary(0.1, "prev-ce", seed=0)
    aux.attach(model, group=1, n_groups=2)
    out = model(input_ids=torch.cat([ids, ids]))
    # A loss on the auxiliary rows as well: it must not leak into the captured gradient.
    (answer_cross_entropy(out.logits[:3], labels) + out.logits[3:].pow(2).mean()).backward()
    assert len(aux._pending) == len(weights) == len(aux.modules)
    for key, module in aux.modules.items():
        name = next(n for n, p in weights.items() if p is module.weight)
        assert torch.allclose(aux._pending[key], reference[name], rtol=1e-4, atol=1e-7), key
    assert all(ref.abs().sum() > 0 for ref in reference.values())
    # prev-ce at step t+1 steps along exactly what same-step used at step t.
    model(input_ids=torch.cat([ids, ids]))
    for key in aux.modules:
        assert torch.allclose(aux.delta[key], same.delta[key], rtol=1e-4, atol=1e-8), key


@pytest.mark.parametrize("kind", [LoRAAuxiliary, RepSAuxiliary])
def test_same_step_perturbs_each_step_along_that_steps_ce_gradient(kind):
    model = _peft_tiny()
    twin = copy.deepcopy(model)  # g_t computed independently, at each step's weights
    batches = [_batch(seed=1), _batch(seed=2)]
    aux = kind(0.1, "same-step", seed=0)
    aux.remember_labels([e for ids, labels in batches for e in _examples(ids, labels)])
    aux.attach(model, group=1, n_groups=2)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for ids, labels in batches:
        twin.load_state_dict(model.state_dict())
        if kind is LoRAAuxiliary:
            weights = {n: p for n, p in twin.named_parameters() if p.requires_grad}
            g = torch.autograd.grad(answer_cross_entropy(twin(input_ids=ids).logits, labels),
                                    list(weights.values()))
            ascent = ascent_step(dict(zip(weights, g, strict=True)), 0.1)
        else:
            out = twin(input_ids=ids, output_hidden_states=True)
            g = torch.autograd.grad(answer_cross_entropy(out.logits, labels),
                                    out.hidden_states[1:])
            ascent = ascent_step({k: x.sum((0, 1)) for k, x in zip(aux.keys, g, strict=True)},
                                 0.1)
        optimizer.zero_grad(set_to_none=True)
        out = model(input_ids=torch.cat([ids, ids]), output_hidden_states=True)
        # The extra backward went through autograd.grad: no weight holds a gradient yet.
        assert all(p.grad is None for p in model.parameters())
        if kind is LoRAAuxiliary:
            for key, module in aux.modules.items():
                name = next(n for n, p in model.named_parameters() if p is module.weight)
                assert torch.allclose(aux.delta[key], ascent[name], rtol=1e-4, atol=1e-8), key
            with torch.no_grad():
                for name, p in twin.named_parameters():
                    if name in ascent:
                        p += ascent[name]
                moved = twin(input_ids=ids).logits
            # The copy's rows are the model with its LoRA factors moved by alpha g_t/||g_t||.
            assert torch.allclose(out.logits[3:], moved, atol=1e-5)
        else:
            for key in aux.keys:
                assert torch.allclose(aux.delta[key], ascent[key], rtol=1e-4, atol=1e-8), key
            h1 = out.hidden_states[1]
            assert torch.allclose(h1[3:] - h1[:3], aux.delta["d1"].expand_as(h1[:3]), atol=1e-6)
        answer_cross_entropy(out.logits[:3], labels).backward()
        optimizer.step()
    assert aux.stats["perturbed_forwards"] == aux.stats["forwards"] == 2


def test_lora_auxiliary_rows_see_the_shifted_adapters_and_clean_rows_do_not():
    model = _peft_tiny()
    ids, _ = _batch()
    shifted = copy.deepcopy(model)
    aux = LoRAAuxiliary(0.1, "random", seed=0)
    aux.attach(model, group=1, n_groups=2)
    with torch.no_grad():
        both = model(input_ids=torch.cat([ids, ids])).logits
        norm = torch.sqrt(sum((d.float() ** 2).sum() for d in aux.delta.values()))
        assert norm.item() == pytest.approx(0.1, rel=1e-5)  # one normalised step of size alpha
        aux.detach()
        clean = model(input_ids=ids).logits
        for key in aux.modules:
            name = key.rsplit(".", 2)[0]
            layer = shifted.get_base_model().get_submodule(name)
            target = layer.lora_A["default"] if key.endswith(".A") else layer.lora_B["default"]
            target.weight += aux.delta[key]
        moved = shifted(input_ids=ids).logits
    assert torch.equal(both[:3], clean)
    assert torch.allclose(both[3:], moved, atol=1e-5)
    assert not torch.allclose(both[3:], clean, atol=1e-4)


def test_reps_steers_the_auxiliary_rows_and_captures_the_ce_gradient():
    model = _peft_tiny()
    ids, labels = _batch()
    aux = RepSAuxiliary(0.1, "prev-ce", seed=0)
    aux.attach(model, group=1, n_groups=2)
    out = model(input_ids=torch.cat([ids, ids]), output_hidden_states=True)
    answer_cross_entropy(out.logits[:3], labels).backward()
    captured = {k: g.clone() for k, g in aux._pending.items()}
    # Second forward: the first layer's output of the auxiliary rows is h_1 + d_1 exactly.
    out = model(input_ids=torch.cat([ids, ids]), output_hidden_states=True)
    h1 = out.hidden_states[1]
    assert torch.allclose(h1[3:] - h1[:3], aux.delta["d1"].expand_as(h1[:3]), atol=1e-6)
    aux.detach()
    plain = model(input_ids=ids, output_hidden_states=True)
    reference = torch.autograd.grad(answer_cross_entropy(plain.logits, labels),
                                    plain.hidden_states[1:])
    for key, ref in zip(aux.keys, reference, strict=True):
        assert torch.allclose(captured[key], ref.sum((0, 1)), rtol=1e-4, atol=1e-7), key


def test_gradients_reach_only_trainable_weights(contracts_file, tmp_path):
    seen = {}

    class Check(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["frozen"] = {n: p.detach().clone() for n, p in model.named_parameters()
                              if not p.requires_grad}
            seen["trainable"] = sorted(n for n, p in model.named_parameters() if p.requires_grad)

        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
            for name, p in model.named_parameters():
                if p.requires_grad:
                    assert p.grad is not None and torch.isfinite(p.grad).all(), name
                else:
                    assert p.grad is None, name

        def on_train_end(self, args, state, control, model=None, **kw):
            for name, p in model.named_parameters():
                if name in seen["frozen"]:
                    assert torch.equal(p, seen["frozen"][name]), name

    for method in ("lfu-lora", "lfu-reps"):
        _train(contracts_file, tmp_path, method, callbacks=[Check()])
        assert seen["trainable"] and all("lora_" in n for n in seen["trainable"])


def test_every_direction_and_variant_trains(contracts_file, tmp_path):
    for method, kw in (("lfu-lora", {"lfu_direction": "prev-total"}),
                       ("lfu-lora", {"lfu_direction": "random"}),
                       ("lfu-lora", {"lfu_consistency": "logits"}),
                       ("lfu-lora", {"lfu_direction": "same-step", "lfu_span": "answer"}),
                       ("lfu-reps", {"lfu_direction": "random"}),
                       ("lfu-reps", {"lfu_direction": "same-step", "lfu_span": "full"}),
                       ("lfu-sam", {}),
                       ("lfu-sam", {"lfu_direction": "same-step"})):
        run = _train(contracts_file, tmp_path, method, **kw)
        stats = run["notes"]["lfu_sam" if method == "lfu-sam" else "lfu"]["stats"]
        assert stats["perturbed_forwards"] >= 2, (method, kw)
        if method != "lfu-sam":
            assert _term_log(run)[-1] > 0, (method, kw)


def test_hooks_are_removed_when_training_ends(contracts_file, tmp_path):
    ctx, terms, _ = prepare_run(TrainConfig(model=models.TINY, data=contracts_file,
                                            method="lfu-lora", output=tmp_path / "o",
                                            progress=False))
    aux = terms[1].aux
    aux.attach(ctx.model, group=1, n_groups=2)
    assert aux._handles
    aux.callback().on_train_end(None, None, None)
    assert not aux._handles and aux.region is None


def test_layer_groups_split_the_layers_in_thirds_like_the_paper():
    assert layer_indices(32, "early") == list(range(0, 11))  # layers 1-11
    assert layer_indices(32, "middle") == list(range(11, 22))  # 12-22
    assert layer_indices(32, "late") == list(range(22, 32))  # 23-32
    assert layer_indices(30, "all") == list(range(30))
    with pytest.raises(ValueError, match="at least 3 layers"):
        layer_indices(2, "late")
    with pytest.raises(ValueError, match="unknown layer group 'top'"):
        layer_indices(30, "top")


def test_ascent_step_and_consistency_math():
    grads = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([[4.0]])}
    step = ascent_step(grads, 0.5)
    assert torch.allclose(step["a"], torch.tensor([0.3, 0.0]))
    assert torch.allclose(step["b"], torch.tensor([[0.4]]))
    assert ascent_step(grads, 0.0) is None
    assert ascent_step({"a": torch.zeros(2)}, 0.1) is None
    h = [torch.zeros(4, 2), torch.zeros(4, 2)]  # two layers, four tokens, two units
    h2 = [torch.ones(4, 2), 3 * torch.ones(4, 2)]
    assert consistency(h, h2).item() == pytest.approx((1 + 9) / 2)
    assert consistency([x[:0] for x in h], [x[:0] for x in h2]).item() == 0.0


def test_bad_hyperparameters_are_errors_that_name_the_key(contracts_file, tmp_path):
    with pytest.raises(ConfigError, match="lfu_alpha"):
        load_train_config(method="lfu-lora", lfu_alpha=-0.1)
    with pytest.raises(ConfigError, match="lfu_layers"):
        load_train_config(method="lfu-lora", lfu_layers="top")
    with pytest.raises(ConfigError, match="lfu_direction"):
        load_train_config(method="lfu-lora", lfu_direction="next")
    with pytest.raises(ConfigError, match="lfu_lambda"):
        load_train_config(method="lfu-lora", lfu_lambda=-1)
    base = dict(model=models.TINY, data=contracts_file, output=tmp_path / "o", progress=False)
    with pytest.raises(ValueError, match="at least 3 layers"):  # before any training
        prepare_run(TrainConfig(method="lfu-lora", lfu_layers="early", **base))
    with pytest.raises(ValueError, match="applies to lfu-lora only"):
        prepare_run(TrainConfig(method="lfu-reps", lfu_direction="prev-total", **base))
    assert load_train_config(method="lfu-lora", lfu_direction="same-step").lfu_direction \
        == "same-step"


def test_same_step_is_refused_under_deepspeed(contracts_file, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from forgetkit.train.lfu import refuse_sharded_same_step

    with pytest.raises(RuntimeError, match="'same-step' .* DeepSpeed .* use prev-ce"):
        refuse_sharded_same_step(SimpleNamespace(is_deepspeed_enabled=True))
    with pytest.raises(RuntimeError, match="FSDP"):
        refuse_sharded_same_step(SimpleNamespace(is_fsdp_enabled=True))
    refuse_sharded_same_step(SimpleNamespace(is_deepspeed_enabled=False))
    # Launched by accelerate with DeepSpeed: refused while the run is set up.
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    config = dict(model=models.TINY, data=contracts_file, output=tmp_path / "o", progress=False)
    with pytest.raises(RuntimeError, match="DeepSpeed"):
        prepare_run(TrainConfig(method="lfu-lora", lfu_direction="same-step", **config))
    prepare_run(TrainConfig(method="lfu-lora", lfu_direction="prev-ce", **config))


def _packed_batch(tok, span="answer"):
    from forgetkit.lm.tokenize import QACollator, encode_records
    from forgetkit.train.lfu import PREFIX, answer_span

    records = synth("contracts", 1, seed=0)[:3]
    examples = encode_records(tok, records, 128)
    for e in examples:
        first, last = answer_span(e["labels"])
        e[PREFIX + "input_ids"] = e["input_ids"][first:last] if span == "answer" \
            else list(e["input_ids"])
    batch = QACollator(tok.pad_token_id)(examples)
    groups = [(batch["input_ids"], batch["attention_mask"]),
              (batch[PREFIX + "input_ids"], batch[PREFIX + "attention_mask"])]
    return batch, groups


@pytest.mark.parametrize("kind", [LoRAAuxiliary, RepSAuxiliary])
def test_answer_span_copies_attend_to_the_clean_prompt(kind):
    from forgetkit.train.kl_to_base import answer_positions
    from forgetkit.train.lfu import PREFIX
    from forgetkit.train.trainer import shared_forward

    model = _peft_tiny()
    _, tok = models.load(models.TINY)
    batch, groups = _packed_batch(tok)
    plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  output_hidden_states=True)
    grads = torch.autograd.grad(answer_cross_entropy(plain.logits, batch["labels"]),
                                plain.hidden_states[1:])
    same_model = copy.deepcopy(model)
    aux = kind(0.1, "prev-ce", seed=0, span="answer")
    aux.attach(model, group=1, n_groups=2, needs_logits=False)
    clean, _ = shared_forward(model, groups, hidden=True)
    where = answer_positions(batch["labels"])
    assert torch.equal(aux.steered, where)  # the copies cover exactly the answer positions
    valid = batch[PREFIX + "attention_mask"].bool()
    # No perturbation yet: each copy reproduces the clean state it stands for.
    assert torch.allclose(clean.logits, plain.logits, atol=1e-5)
    for h, twin in zip(plain.hidden_states[1:], aux.stash, strict=True):
        assert torch.allclose(twin[valid], h[where].detach(), atol=1e-5)
    ce = answer_cross_entropy(clean.logits, batch["labels"])
    ce.backward()
    if kind is RepSAuxiliary:  # g_l: the CE gradient summed over the tokens it steers
        for key, g in zip(aux.keys, grads, strict=True):
            assert torch.allclose(aux._pending[key], g[where].sum(0), rtol=1e-4, atol=1e-7)
    # Next forward: perturbed copies differ, clean tokens do not.
    clean2, _ = shared_forward(model, groups, hidden=True)
    assert aux.delta is not None
    assert torch.allclose(clean2.logits, plain.logits, atol=1e-5)
    assert not torch.allclose(aux.stash[-1][valid], plain.hidden_states[-1][where].detach(),
                              atol=1e-4)
    # same-step on a copy at the same weights steps along what prev-ce uses one step later.
    same = kind(0.1, "same-step", seed=0, span="answer")
    same.remember_labels([{"input_ids": i[m].tolist(), "labels": lab[m].tolist()}
                          for i, lab, m in zip(batch["input_ids"], batch["labels"],
                                               batch["attention_mask"].bool(), strict=True)])
    same.attach(same_model, group=1, n_groups=2, needs_logits=False)
    shared_forward(same_model, groups, hidden=True)
    assert same.delta is not None and set(same.delta) == set(aux.delta)
    for key, step in same.delta.items():
        assert torch.allclose(aux.delta[key], step, rtol=1e-4, atol=1e-8), key


def test_answer_span_works_with_eager_attention_too():
    from forgetkit.train.trainer import shared_forward

    model = _peft_tiny()
    _, tok = models.load(models.TINY)
    batch, groups = _packed_batch(tok)
    model.get_base_model().config._attn_implementation = "eager"
    with torch.no_grad():
        plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      output_hidden_states=True)
        aux = RepSAuxiliary(0.1, "random", seed=0, span="answer")
        aux.attach(model, group=1, n_groups=2)
        clean, _ = shared_forward(model, groups, hidden=True)
    assert torch.allclose(clean.logits, plain.logits, atol=1e-5)
    assert torch.isfinite(aux.stash[-1]).all() and aux.delta is not None


def test_full_span_gathers_the_copys_answer_tokens_during_the_forward():
    from forgetkit.train.kl_to_base import answer_positions
    from forgetkit.train.trainer import shared_forward

    model = _peft_tiny()
    _, tok = models.load(models.TINY)
    batch, groups = _packed_batch(tok, span="full")
    aux = LoRAAuxiliary(0.1, "random", seed=0)
    aux.remember_labels([{"input_ids": i[m].tolist(), "labels": lab[m].tolist()}
                         for i, lab, m in zip(batch["input_ids"], batch["labels"],
                                              batch["attention_mask"].bool(), strict=True)])
    aux.attach(model, group=1, n_groups=2, needs_logits=False)
    order = []
    model.get_base_model().model.layers[-1].register_full_backward_pre_hook(
        lambda *a: order.append("last layer"))
    clean, copy_ = shared_forward(model, groups, hidden=True)
    where = answer_positions(batch["labels"])
    assert torch.equal(aux.answer, where) and len(aux.stash) == len(copy_.hidden_states) - 1
    target = [h[where].detach() for h in clean.hidden_states[1:]]
    after = [h[where] for h in copy_.hidden_states[1:]]  # the gather after the forward
    for early, late in zip(aux.stash, after, strict=True):
        assert torch.equal(early, late)
    weights = [p for p in model.parameters() if p.requires_grad]
    loss = consistency(target, aux.stash)
    assert loss.item() > 0 and loss.item() == consistency(target, after).item()
    # Each layer's gather is undone when the backward reaches that layer, not before the
    # first layer's backward (a full-size gradient of every layer held at the peak).
    aux.stash[0].grad_fn.register_hook(lambda *a: order.append("gather h1"))
    grads = torch.autograd.grad(loss, weights, retain_graph=True)
    assert order == ["last layer", "gather h1"]
    reference = torch.autograd.grad(consistency(target, after), weights)
    for g, ref in zip(grads, reference, strict=True):
        assert torch.allclose(g, ref, rtol=1e-5, atol=1e-9)
    assert any(g.abs().sum() > 0 for g in grads)
    # Rows the LfU term was not built with: nothing is gathered, the term gathers after.
    aux.remember_labels([])
    shared_forward(model, groups, hidden=True)
    assert aux.answer is None and aux.stash == []


def test_training_compares_the_states_gathered_during_the_forward(contracts_file, tmp_path,
                                                                   monkeypatch):
    from forgetkit.train import lfu
    from forgetkit.train.lfu import terms

    gathered, compared = [], []
    stash, compare = lfu.Auxiliary._stash, terms.consistency

    def spy_stash(self, h):
        stash(self, h)
        if self.span == "full" and self.answer is not None:
            gathered.append(self.stash[-1])

    def spy_consistency(clean, aux):
        compared.append(all(any(h is g for g in gathered) for h in aux))
        return compare(clean, aux)

    monkeypatch.setattr(lfu.Auxiliary, "_stash", spy_stash)
    monkeypatch.setattr(terms, "consistency", spy_consistency)
    run = _train(contracts_file, tmp_path, "lfu-lora")
    assert run["notes"]["lfu"]["span"] == "full"
    assert compared == [True] * 3  # steps 2-4 run the copy (step 1 is plain SFT)


def test_answer_span_captures_the_ce_gradient_alone_under_a_consistency_loss():
    """The answer-span copies read the clean prompt; the consistency term's gradient must not
    reach the captured "CE gradient" through it (it did: relative error 4.5 at alpha 0.1)."""
    from forgetkit.train.trainer import shared_forward

    model = _peft_tiny()
    _, tok = models.load(models.TINY)
    batch, groups = _packed_batch(tok)
    weights = {n: p for n, p in model.named_parameters() if p.requires_grad}
    plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    reference = dict(zip(weights, torch.autograd.grad(
        answer_cross_entropy(plain.logits, batch["labels"]), list(weights.values())),
        strict=True))
    aux = LoRAAuxiliary(1.0, "prev-ce", seed=0, span="answer")
    aux.attach(model, group=1, n_groups=2, needs_logits=False)
    where = None
    for _ in range(2):  # step 1 captures g; step 2 runs perturbed copies and captures again
        clean, _ = shared_forward(model, groups, hidden=True)
        ce = answer_cross_entropy(clean.logits, batch["labels"])
        if where is None:
            from forgetkit.train.kl_to_base import answer_positions

            where = answer_positions(batch["labels"])
        valid = batch["lfu_input_ids"].ne(-1) & groups[1][1].bool()
        consistency = sum((h[where].detach() - twin[valid]).pow(2).mean()
                          for h, twin in zip(clean.hidden_states[1:], aux.stash, strict=True))
        (ce + 5.0 * consistency).backward()
        model.zero_grad()
    assert aux.delta is not None and float(consistency) > 1e-4  # perturbed copies, step 2
    for key, module in aux.modules.items():
        name = next(n for n, p in weights.items() if p is module.weight)
        torch.testing.assert_close(aux._pending[key], reference[name], rtol=1e-4, atol=1e-7,
                                   msg=key)


@pytest.mark.parametrize("method,span", [("lfu-lora", "full"), ("lfu-lora", "answer"),
                                         ("lfu-reps", "answer")])
def test_the_lagged_direction_is_compared_with_the_same_steps(tmp_path, method, span):
    """One example, weights that barely move: the previous step's CE gradient is this step's,
    so the logged cosine must be 1; on varied batches it is a cosine below that."""
    one = write_qa(synth("contracts", 1, seed=0)[:1], tmp_path / "one.jsonl")
    run = _train(one, tmp_path, method, lfu_cosine_every=1, lfu_span=span, max_steps=5,
                 learning_rate=1e-12)
    logged = _term_log(run, "lfu_cosine")
    measured = run["notes"]["lfu"]["cosine_same_step"]
    assert len(logged) >= 3 and [m["cosine"] for m in measured] == pytest.approx(logged)
    assert all(c == pytest.approx(1.0, abs=1e-4) for c in logged), logged
    varied = _train(write_qa(synth("contracts", 2, seed=1)[:16], tmp_path / "many.jsonl"),
                    tmp_path, method, lfu_cosine_every=2, lfu_span=span, max_steps=6,
                    learning_rate=1e-2)
    cosines = [m["cosine"] for m in varied["notes"]["lfu"]["cosine_same_step"]]
    assert cosines and all(-1 <= c < 0.9999 for c in cosines), cosines
    assert all(m["forward"] % 2 == 1 for m in varied["notes"]["lfu"]["cosine_same_step"])


def test_the_cosine_needs_the_lagged_direction(contracts_file, tmp_path):
    with pytest.raises(Exception, match="lfu_cosine_every compares prev-ce"):
        _train(contracts_file, tmp_path, "lfu-lora", lfu_cosine_every=1,
               lfu_direction="random")
