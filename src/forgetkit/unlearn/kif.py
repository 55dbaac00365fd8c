"""``kif``: Knowledge Immunization Framework (KIF paper; the steps are specified in docs/kif.md).

1. mine a signature per forgotten subject at the layers that separate it best
   (``signature.py``; activations read here);
2. suppress it with a gated hook on those blocks (``suppression.py``);
3. distil: train LoRA adapters so the *unhooked* model matches the hooked input model on the
   forget examples and the input model on their retain partners:

       loss = KL(p_hooked || p_theta) on forget answers
              + w * KL(p_input || p_theta) on retain answers

Both teachers are frozen, so their next-token distributions are computed once before
training (top-k log-probs + tail, the cached reference of ``train/kl_to_base.py``); training
runs no hook and no second model. The output needs no hook either.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from forgetkit.config import Options
from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.lm import models
from forgetkit.lm.activations import block_outputs
from forgetkit.lm.layers import decoder_layers
from forgetkit.lm.tokenize import QACollator, encode_records, prompt_ids
from forgetkit.train.kl_to_base import PREFIX as CACHE_PREFIX
from forgetkit.train.kl_to_base import CachedLogprobOptions, CachedReference, answer_positions
from forgetkit.train.processes import is_main_process, once_across_processes
from forgetkit.train.registry import RunContext, register_term
from forgetkit.unlearn.registry import UnlearningMethod, register_unlearning
from forgetkit.unlearn.residual import check_layers, subject_start
from forgetkit.unlearn.retain import PREFIX as RETAIN
from forgetkit.unlearn.retain import RetainOptions, attach_retain, forget_records, retain_records
from forgetkit.unlearn.setting import subjects
from forgetkit.unlearn.signature import (
    Signatures,
    choose_layers,
    cosine,
    gate_thresholds,
    separation,
    signature,
)
from forgetkit.unlearn.suppression import suppressed

MAX_RETAIN = 256  # retain prompts (and examples) read for the contrast and the gate


# ------------------------------------------------------------------------ reading activations

@torch.no_grad()
def prompt_activations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                       records: Sequence[QARecord], layers: Sequence[int],
                       batch_size: int = 16) -> torch.Tensor:
    """a_l(q) for every record: block outputs averaged over the prompt's tokens from the
    subject's name to the end. Returns float32 [n, len(layers), d] on the CPU."""
    rows = []
    was_training = model.training
    model.eval()
    for i in range(0, len(records), batch_size):
        chunk = records[i:i + batch_size]
        ids = [prompt_ids(tokenizer, r.question) for r in chunk]
        starts = [subject_start(tokenizer, r.question, r.subject) for r in chunk]
        batch = QACollator(tokenizer.pad_token_id)([{"input_ids": x} for x in ids])
        store = block_outputs(model, layers, batch["input_ids"], batch["attention_mask"])
        span = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
        for row, (start, x) in enumerate(zip(starts, ids, strict=True)):
            span[row, start:len(x)] = True
        weights = span.float() / span.sum(1, keepdim=True)
        rows.append(torch.stack([torch.einsum("bt,btd->bd", weights, store[layer].float().cpu())
                                 for layer in layers], dim=1))
    model.train(was_training)
    return torch.cat(rows)


@torch.no_grad()
def token_cosines(model: PreTrainedModel, examples: Sequence[dict], starts: Sequence[int],
                  sig: Signatures, pad_token_id: int, batch_size: int = 16) -> torch.Tensor:
    """cos((h - c_l), u_{s,l}) at every token from ``starts[i]`` on of every example (no hook).

    Returns [tokens, m, S] for the signature's layers.
    """
    out = []
    was_training = model.training
    model.eval()
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        batch = QACollator(pad_token_id)([{"input_ids": e["input_ids"]} for e in chunk])
        store = block_outputs(model, sig.layers, batch["input_ids"], batch["attention_mask"])
        mask = batch["attention_mask"].bool()
        for row, start in enumerate(starts[i:i + batch_size]):
            mask[row, :start] = False
        out.append(torch.stack([
            cosine(store[layer].cpu()[mask], sig.centres[j], sig.directions[:, j])
            for j, layer in enumerate(sig.layers)], dim=1))
    model.train(was_training)
    return torch.cat(out)


# ------------------------------------------------------------------------------------ mining

def _split(n: int, holdout: float, rng: random.Random) -> tuple[list[int], list[int]]:
    """(mining, held-out) indices; a single item is used for both (scored in-sample)."""
    order = list(range(n))
    rng.shuffle(order)
    if n < 2:
        return order, order
    held = min(n - 1, max(1, round(holdout * n)))
    return order[held:], order[:held]


def mine_signatures(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    forget: Sequence[QARecord], retain: Sequence[QARecord], *,
                    layers: Sequence[int] | None = None, top_layers: int = 3,
                    holdout: float = 0.5, gate_quantile: float = 0.999, strength: float = 1.0,
                    seed: int = 0, max_length: int = 256) -> Signatures:
    """Steps 1 and 2's calibration (docs/kif.md): signatures, layers, gate thresholds.

    ``layers`` pins the blocks (1-based); otherwise the ``top_layers`` blocks with the best
    held-out separation are kept. ``report`` holds every score and the firing rates.
    """
    names = subjects(forget)
    if not names or any(r.subject is None for r in forget):
        raise UserError("kif forms one signature per forget subject, so every forget record "
                         "needs a 'subject' (the entity it is about)")
    n_layers = len(decoder_layers(model))
    candidates = list(range(1, n_layers + 1)) if layers is None else check_layers(layers, n_layers)
    rng = random.Random(f"kif:{seed}")
    retain = list(retain)
    if len(retain) > MAX_RETAIN:
        retain = rng.sample(retain, MAX_RETAIN)
    acts_f = prompt_activations(model, tokenizer, forget, candidates)
    acts_r = prompt_activations(model, tokenizer, retain, candidates)

    # Layer choice: held-out Fisher ratio of each subject's direction, mean over subjects.
    mine_r, held_r = _split(len(retain), holdout, rng)
    by_subject = {s: [i for i, r in enumerate(forget) if r.subject == s] for s in names}
    scores = []
    for s in names:
        mine_s, held_s = _split(len(by_subject[s]), holdout, rng)
        idx = torch.tensor(by_subject[s])
        scores.append(separation(acts_f[idx[mine_s]], acts_r[mine_r], acts_f[idx[held_s]],
                                 acts_r[held_r]))
    layer_scores = [sum(col) / len(col) for col in zip(*scores, strict=True)]
    chosen = candidates if layers is not None else choose_layers(
        layer_scores, candidates, min(top_layers, len(candidates)))
    pick = [candidates.index(layer) for layer in chosen]

    # Final signatures from all prompts at the chosen blocks.
    directions, centres = [], None
    for s in names:
        u, centres = signature(acts_f[by_subject[s]][:, pick], acts_r[:, pick])
        directions.append(u)
    sig = Signatures(names, chosen, torch.stack(directions), centres,
                     torch.zeros(len(names), len(chosen)), strength)

    # Gate thresholds from every token of the retain examples; firing rates on the forget ones.
    pad = tokenizer.pad_token_id
    retain_cos = token_cosines(model, encode_records(tokenizer, retain, max_length),
                               [0] * len(retain), sig, pad)
    sig.thresholds = torch.stack([gate_thresholds(retain_cos[:, j], gate_quantile)
                                  for j in range(len(chosen))], dim=1)
    fired = {}
    for si, s in enumerate(names):
        recs = [forget[i] for i in by_subject[s]]
        starts = [subject_start(tokenizer, r.question, r.subject) for r in recs]
        cos = token_cosines(model, encode_records(tokenizer, recs, max_length), starts, sig, pad)
        fired[s] = (cos[:, :, si] > sig.thresholds[si]).float().mean(0).tolist()
    sig.report = {
        "layers": chosen, "candidates": candidates, "pinned": layers is not None,
        "layer_scores": {str(layer): round(v, 4) for layer, v in
                         zip(candidates, layer_scores, strict=True)},
        "retain_prompts": len(retain), "gate_quantile": gate_quantile, "strength": strength,
        "subjects": {s: {
            "prompts": len(by_subject[s]),
            "fisher": [round(scores[si][i], 4) for i in pick],
            "threshold": [round(float(t), 4) for t in sig.thresholds[si]],
            "fires_on_own_tokens": [round(v, 4) for v in fired[s]],
            "fires_on_retain_tokens": [round(float(v), 5) for v in
                                       (retain_cos[:, :, si] > sig.thresholds[si]).float().mean(0)],
        } for si, s in enumerate(names)},
    }
    return sig


# ------------------------------------------------------------------------------ distillation

def cached_teacher(model: PreTrainedModel, pairs: Sequence[tuple[list[int], list[int]]],
                   pad_token_id: int, top_k: int, progress: bool) -> CachedReference:
    """The model's next-token log-probs on the answer positions of (input_ids, labels) pairs."""
    rows = [{CACHE_PREFIX + "input_ids": ids, CACHE_PREFIX + "labels": labels}
            for ids, labels in pairs]
    return CachedReference.compute(model, rows, pad_token_id, top_k, progress=progress)


@dataclass
class DistilKL:
    """KL(p_teacher || p_theta) on the answer positions of one input group (teacher cached).

    ``extra_forward`` None: the batch itself (the forget examples); ``"retain_"``: their
    retain partners, run in the same forward pass.
    """

    teacher: CachedReference
    extra_forward: str | None = None
    weight: float = 1.0
    name: str = "kif_forget"
    needs_hidden_states: bool = False

    def __call__(self, ctx) -> torch.Tensor:
        if self.extra_forward is None:
            logits, labels = ctx.outputs.logits, ctx.labels
        else:
            logits = ctx.extra_outputs[self.extra_forward].logits
            labels = ctx.extras[self.extra_forward + "labels"]
        where = answer_positions(labels)
        # Positions first, softmax second: no float copy of the whole [rows, tokens, vocab].
        logp = F.log_softmax(logits[where].float(), dim=-1)
        return self.teacher.kl(ctx, where, logp)


def pending_signatures(output: Path) -> Path:
    """Where a run keeps its signatures until ``unlearn`` moves them into the output."""
    return output.with_name(f".{output.name}.kif_signatures.safetensors")


def _fingerprint(ctx: RunContext, retain: Sequence[QARecord]) -> str:
    cfg = ctx.config
    h = hashlib.sha256(json.dumps({
        "model": cfg.model, "tokenizer": models.fingerprint(ctx.tokenizer), "seed": cfg.seed,
        "layers": cfg.kif_layers, "top": cfg.kif_top_layers, "holdout": cfg.kif_holdout,
        "quantile": cfg.kif_gate_quantile, "strength": cfg.kif_push,
        "max_length": cfg.max_length}).encode())
    for r in (*forget_records(ctx), *retain):
        h.update(json.dumps([r.question, r.answer, r.subject]).encode())
    return h.hexdigest()[:16]


def _signatures(ctx: RunContext) -> Signatures:
    """Mine the run's signatures, or reuse them from ``kif_signatures`` if built for it."""
    cfg = ctx.config
    retain = retain_records(ctx)
    fingerprint = _fingerprint(ctx, retain)
    given = Path(cfg.kif_signatures) if cfg.kif_signatures else None
    if given is not None and given.is_file():
        if Signatures.fingerprint_of(given) != fingerprint:
            raise UserError(f"{given}: these KIF signatures were mined for another model, "
                             "data set or KIF options; delete the file or point "
                             "--kif-signatures at a new one")
        return Signatures.load(given)
    sig = once_across_processes(
        "kif-signatures", cfg.output,
        lambda: mine_signatures(ctx.model, ctx.tokenizer, forget_records(ctx), retain,
                                layers=cfg.kif_layers, top_layers=cfg.kif_top_layers,
                                holdout=cfg.kif_holdout, gate_quantile=cfg.kif_gate_quantile,
                                strength=cfg.kif_push, seed=cfg.seed,
                                max_length=cfg.max_length), ctx.notes)
    if (given is not None or cfg.output is not None) and is_main_process():
        sig.save(given or pending_signatures(Path(cfg.output)), fingerprint)
    return sig


class KIFOptions(Options):
    """KIF's signature mining and gate (docs/kif.md)."""

    kif_layers: list[int] | None = Field(
        None, description="KIF: decoder blocks to hook, 1-based (default: chosen by separation)")
    kif_top_layers: int = Field(3, ge=1, description="KIF: blocks the automatic choice keeps")
    kif_gate_quantile: float = Field(
        0.999, gt=0, le=1, description="KIF: gate threshold, this quantile of retain tokens' "
        "similarity to a signature")
    kif_push: float = Field(
        16.0, gt=0, description="KIF: how far gated tokens are pushed along the signature, in "
        "multiples of their own component: 1 projects it out (to the retain centre), 16 (the "
        "demo's measured choice) pushes them 15 components past it, to the opposite side; "
        "old name kif_strength")
    kif_holdout: float = Field(
        0.5, gt=0, lt=1, description="KIF: share of each subject's prompts held out to score "
        "layers")
    kif_signatures: Path | None = Field(
        None, description="KIF: file to save the mined signatures to, or reuse them from")


@register_term("kif-forget", options=(KIFOptions, CachedLogprobOptions))
def build_kif_forget(ctx: RunContext) -> DistilKL:
    cfg = ctx.config
    sig = _signatures(ctx)
    # cover-retain repeats the forget records in order: one teacher pass per distinct record.
    n = len(forget_records(ctx))
    with suppressed(ctx.model, sig):
        teacher = cached_teacher(ctx.model, [(e["input_ids"], e["labels"])
                                             for e in ctx.examples[:n]],
                                 ctx.tokenizer.pad_token_id, cfg.kl_top_k, cfg.progress)
    teacher.top_logp = [teacher.top_logp[i % n] for i in range(len(ctx.examples))]
    teacher.top_ids = [teacher.top_ids[i % n] for i in range(len(ctx.examples))]
    ctx.notes["kif"] = sig.report
    return DistilKL(teacher)


@register_term("kif-retain", options=(RetainOptions, CachedLogprobOptions))
def build_kif_retain(ctx: RunContext) -> DistilKL:
    cfg = ctx.config
    attach_retain(ctx)
    teacher = cached_teacher(ctx.model, [(e[RETAIN + "input_ids"], e[RETAIN + "labels"])
                                         for e in ctx.examples],
                             ctx.tokenizer.pad_token_id, cfg.kl_top_k, cfg.progress)
    return DistilKL(teacher, extra_forward=RETAIN, weight=cfg.retain_weight, name="kif_retain")


KIF = register_unlearning(UnlearningMethod(
    "kif", "KIF: mine subject signatures, suppress them with a gated hook, distil into LoRA",
    terms=("kif-forget", "kif-retain"), parameters="lora",
    # Distillation towards a hooked teacher that is far from the model (forget KL of several
    # nats at the default strength): 1e-4 barely moved it in the demo, 1e-3 did (docs/kif.md).
    learning_rate=(("lora", 1e-3),)))

__all__ = ["KIF", "DistilKL", "KIFOptions", "cached_teacher", "mine_signatures",
           "pending_signatures", "prompt_activations", "token_cosines"]
