import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.lm.tokenize import QACollator
from forgetkit.train.config import TrainConfig
from forgetkit.train.kl_to_base import (
    PREFIX,
    KLCacheError,
    LiveReference,
    answer_positions,
    kl_full,
    kl_topk,
)
from forgetkit.train.registry import RunContext
from forgetkit.train.run import RUN_FILE, prepare_run, train
from forgetkit.train.trainer import shared_forward


def test_topk_kl_with_every_token_equals_the_full_kl():
    base = F.log_softmax(torch.randn(6, 50), -1)
    model = F.log_softmax(torch.randn(6, 50), -1)
    vals, ids = base.topk(50, -1)
    assert torch.allclose(kl_topk(vals, ids, model), kl_full(base, model), atol=1e-6)


def test_topk_kl_is_a_lower_bound_that_tightens_with_k():
    base = F.log_softmax(2 * torch.randn(6, 50), -1)
    model = F.log_softmax(2 * torch.randn(6, 50), -1)
    full = kl_full(base, model)
    values = [kl_topk(*base.topk(k, -1), model) for k in (1, 5, 20, 50)]
    assert all(v <= full + 1e-6 for v in values)
    assert values[-1] == pytest.approx(full.item(), abs=1e-5)
    assert values[2] > values[0]


@pytest.fixture
def contracts_file(tmp_path):
    return write_qa(synth("contracts", 1, seed=0)[:8], tmp_path / "train.jsonl")


def _kl_on_first_batch(ctx: RunContext, reference, model) -> torch.Tensor:
    batch = QACollator(ctx.tokenizer.pad_token_id)(ctx.examples[:4])
    extras = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    out, pert = shared_forward(model, [(batch["input_ids"], batch["attention_mask"]),
                                       (batch[PREFIX + "input_ids"],
                                        batch[PREFIX + "attention_mask"])], hidden=False)
    where = answer_positions(extras[PREFIX + "labels"])
    logp = F.log_softmax(pert.logits.float(), -1)[where]
    tctx = SimpleNamespace(extras=extras, model=model, trainer=None)
    return reference.kl(tctx, where, logp)


def test_cached_reference_with_full_vocabulary_equals_live(contracts_file, tmp_path):
    cfg = TrainConfig(model=models.TINY, data=contracts_file, method="seat", output=tmp_path / "o",
                      kl_top_k=10_000, progress=False)
    ctx, terms, _ = prepare_run(cfg)
    cached = terms[1].reference
    base, _ = models.load(models.TINY)
    live = LiveReference(base)
    # Move the trained model away from the base so the KL is not trivially zero.
    with torch.no_grad():
        for p in ctx.model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    a = _kl_on_first_batch(ctx, cached, ctx.model)
    b = _kl_on_first_batch(ctx, live, ctx.model)
    assert a.item() > 1e-4
    assert a.item() == pytest.approx(b.item(), abs=1e-5)


def test_kl_is_zero_before_training(contracts_file, tmp_path):
    cfg = TrainConfig(model=models.TINY, data=contracts_file, method="full-kl",
                      output=tmp_path / "o", progress=False)
    ctx, terms, _ = prepare_run(cfg)
    assert abs(_kl_on_first_batch(ctx, terms[1].reference, ctx.model).item()) < 1e-5


def test_cache_for_other_data_is_refused(contracts_file, tmp_path):
    cache = tmp_path / "pbase.safetensors"
    common = dict(model=models.TINY, method="seat", kl_cache=cache, progress=False,
                  output=tmp_path / "o")
    prepare_run(TrainConfig(data=contracts_file, **common))
    assert cache.is_file()
    prepare_run(TrainConfig(data=contracts_file, **common))  # same data: reused
    other = write_qa(synth("contracts", 1, seed=9)[:8], tmp_path / "other.jsonl")
    with pytest.raises(KLCacheError, match="different dataset"):
        prepare_run(TrainConfig(data=other, **common))
    with pytest.raises(KLCacheError, match="different dataset"):
        prepare_run(TrainConfig(data=contracts_file, perturb_seed=5, **common))


@pytest.mark.parametrize("method, reference", [("seat", "cached"), ("full-kl", "live")])
def test_kl_methods_train_and_log_both_terms(contracts_file, tmp_path, method, reference):
    out = train(TrainConfig(model=models.TINY, data=contracts_file, method=method,
                            kl_reference=reference, output=tmp_path / method, epochs=2,
                            batch_size=4, learning_rate=1e-3, logging_steps=1,
                            save_strategy="no", progress=False))
    run = json.loads((out / RUN_FILE).read_text())
    logged = [h for h in run["log_history"] if "loss_kl" in h]
    assert logged and all(h["loss_kl"] >= 0 for h in logged)
    assert logged[-1]["loss_kl"] > 0  # the model moved away from the base
    assert run["notes"]["perturbed_examples"]


def test_live_kl_for_lora_uses_the_model_with_adapters_disabled(contracts_file, tmp_path):
    cfg = TrainConfig(model=models.TINY, data=contracts_file, method="lora",
                      output=tmp_path / "o", progress=False)
    ctx, _, _ = prepare_run(cfg)
    from forgetkit.train.kl_to_base import add_perturbed_copies

    add_perturbed_copies(ctx)
    with torch.no_grad():
        for n, p in ctx.model.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)
    trainer = SimpleNamespace(accelerator=SimpleNamespace(unwrap_model=lambda m: m))
    live_adapter = LiveReference(None)
    base, _ = models.load(models.TINY)
    batch = QACollator(ctx.tokenizer.pad_token_id)(ctx.examples[:2])
    where = answer_positions(batch[PREFIX + "labels"])
    tctx = SimpleNamespace(extras=batch, model=ctx.model, trainer=trainer)
    got = live_adapter._base_logp(tctx, where)
    want = LiveReference(base)._base_logp(tctx, where)
    assert torch.allclose(got, want, atol=1e-5)
