"""Loss term ``kl``: KL(p_base || p_theta) on entity-perturbed inputs (SEAT paper, Eq. 5).

Each training example gets one fixed perturbed copy (its subject replaced by a fictitious
name, the answer unchanged, see ``data/perturb.py``). On the answer tokens of that copy the
fine-tuned model is pulled towards the base model, so new knowledge does not spill over to
neighbouring unknown entities. The loss is CE + gamma * KL (Eq. 6).

Where p_base comes from:

* ``cached`` (default): the perturbed set is fixed, so the base's log-probs on it are
  computed once before training and kept as the top-k log-probs per position plus one tail
  bucket holding the remaining mass. No second model sits in memory. With k = vocabulary
  size this is exact.
* ``live``: a frozen copy of the base runs on every step (for LoRA, the same model with its
  adapters disabled, so no copy is needed).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from forgetkit.config import Options, RunOptions
from forgetkit.data.perturb import entity_perturb
from forgetkit.errors import UserError
from forgetkit.lm import models
from forgetkit.lm.tokenize import IGNORE_INDEX, QACollator, encode_records
from forgetkit.train.processes import is_main_process, once_across_processes
from forgetkit.train.registry import RunContext, register_term

PREFIX = "perturbed_"


class CachedLogprobOptions(Options):
    """How much of a frozen model's next-token distribution a cache keeps."""

    kl_top_k: int = Field(256, ge=1, description="log-probs kept per position when cached")


class KLOptions(Options):
    """SEAT's KL to the base model on entity-perturbed inputs (methods seat, full-kl)."""

    gamma: float = Field(1.0, ge=0, description="weight of the KL term")
    kl_reference: Literal["cached", "live"] = Field(
        "cached", description="cached: base log-probs computed once; live: a frozen base")
    kl_cache: Path | None = Field(
        None, description="file to reuse the cached base log-probs from / save them to")
    perturb_seed: int | None = Field(None, description="seed of entity perturbation")

    def resolve(self, run: RunOptions) -> None:
        if self.perturb_seed is None:
            self.perturb_seed = run.seed


class KLCacheError(UserError):
    """A cached p_base does not belong to this run's data, tokenizer or base model."""


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Mask of logit positions that predict an answer token (labels shifted by one)."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return mask


def kl_full(base_logp: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(p_base || p_theta) from full log-prob rows [N, V]."""
    return (base_logp.exp() * (base_logp - logp)).sum(-1).mean()


def kl_topk(top_logp: torch.Tensor, top_ids: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """KL(p_base || p_theta) with p_base known on its top-k tokens plus one tail bucket.

    The tail bucket holds the base's remaining mass 1 - sum(top-k), compared with the fine-
    tuned model's mass outside the same k tokens: an exact KL between the two distributions
    coarsened to k + 1 outcomes (a lower bound of the full KL; equal when k = V).
    """
    q_top = logp.gather(-1, top_ids)
    head = (top_logp.exp() * (top_logp - q_top)).sum(-1)
    p_tail_log = _log_rest(top_logp)
    q_tail_log = _log_rest(q_top)
    tail = torch.where(p_tail_log > -30, p_tail_log.exp() * (p_tail_log - q_tail_log),
                       torch.zeros_like(head))
    return (head + tail).mean()


def _log_rest(logp: torch.Tensor) -> torch.Tensor:
    """log(1 - sum(exp(logp))) along the last axis, stable near zero."""
    lse = torch.logsumexp(logp, dim=-1).clamp(max=-1e-7)
    return torch.log(-torch.expm1(lse))


@dataclass
class KLToBase:
    """The loss term; ``reference`` maps (batch extras, answer mask) to p_base rows."""

    reference: CachedReference | LiveReference
    weight: float = 1.0
    name: str = "kl"
    needs_hidden_states: bool = False
    extra_forward: str = PREFIX

    def __call__(self, ctx) -> torch.Tensor:
        labels = ctx.extras[PREFIX + "labels"]
        where = answer_positions(labels)
        # Select answer positions before the softmax: the [B, T, V] log-probs are never built.
        logp = F.log_softmax(ctx.extra_outputs[PREFIX].logits[where].float(), dim=-1)
        return self.reference.kl(ctx, where, logp)


class LiveReference:
    """p_base from a frozen base model on every step."""

    def __init__(self, base_model: torch.nn.Module | None):
        self.base = base_model  # None: the trained model with its LoRA adapters disabled

    @torch.no_grad()
    def _base_logp(self, ctx, where: torch.Tensor) -> torch.Tensor:
        ids, mask = ctx.extras[PREFIX + "input_ids"], ctx.extras[PREFIX + "attention_mask"]
        if self.base is None:
            model = ctx.trainer.accelerator.unwrap_model(ctx.model)
            with model.disable_adapter():
                logits = model(input_ids=ids, attention_mask=mask).logits
        else:
            self.base.to(ids.device)
            logits = self.base(input_ids=ids, attention_mask=mask).logits
        return F.log_softmax(logits[where].float(), dim=-1)

    def kl(self, ctx, where: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
        return kl_full(self._base_logp(ctx, where), logp)


class CachedReference:
    """p_base as top-k log-probs per answer position, computed once, indexed by example."""

    def __init__(self, top_logp: list[torch.Tensor], top_ids: list[torch.Tensor]):
        self.top_logp, self.top_ids = top_logp, top_ids

    def kl(self, ctx, where: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
        rows = ctx.extras["example_index"].tolist()
        # Positions come out of `where` row by row, matching the per-example cache order.
        top_logp = torch.cat([self.top_logp[i] for i in rows]).to(logp.device)
        top_ids = torch.cat([self.top_ids[i] for i in rows]).to(logp.device)
        if top_logp.shape[0] != logp.shape[0]:
            raise KLCacheError(f"cached p_base has {top_logp.shape[0]} answer positions for "
                               f"this batch, the model {logp.shape[0]}; the cache belongs to "
                               "other data")
        return kl_topk(top_logp, top_ids, logp)

    @classmethod
    @torch.no_grad()
    def compute(cls, model, examples: list[dict], pad_id: int, k: int, batch_size: int = 8,
                progress: bool = True) -> CachedReference:
        was_training = model.training
        model.eval()
        collate = QACollator(pad_id)
        top_logp, top_ids = [], []
        chunks = [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]
        for chunk in tqdm(chunks, desc="caching base log-probs", disable=not progress,
                          leave=False):
            batch = collate([{"input_ids": e[PREFIX + "input_ids"],
                              "labels": e[PREFIX + "labels"]} for e in chunk])
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits
            where = answer_positions(batch["labels"])
            for row in range(len(chunk)):
                logp = F.log_softmax(logits[row][where[row]].float(), dim=-1)
                vals, ids = logp.topk(min(k, logp.shape[-1]), dim=-1)
                top_logp.append(vals.contiguous())
                top_ids.append(ids.to(torch.int32).contiguous())
        model.train(was_training)
        return cls(top_logp, [i.long() for i in top_ids])

    def save(self, path: Path, fingerprint: str) -> None:
        tensors = {f"logp.{i}": t for i, t in enumerate(self.top_logp)}
        tensors.update({f"ids.{i}": t.to(torch.int32) for i, t in enumerate(self.top_ids)})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(tensors, str(tmp), metadata={"fingerprint": fingerprint,
                                               "n": str(len(self.top_logp))})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> CachedReference:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("fingerprint") != fingerprint:
            raise KLCacheError(
                f"{path}: this cached p_base was computed for a different dataset, "
                "tokenizer, base model or perturbation seed (fingerprint "
                f"{meta.get('fingerprint')} != {fingerprint}); delete it or point --kl-cache "
                "at a new file")
        tensors = load_file(str(path))
        n = int(meta["n"])
        return cls([tensors[f"logp.{i}"] for i in range(n)],
                   [tensors[f"ids.{i}"].long() for i in range(n)])


def cache_fingerprint(ctx: RunContext) -> str:
    """What the cached p_base depends on: base model, tokenizer, perturbed data, k."""
    h = hashlib.sha256()
    h.update(json.dumps({"model": ctx.config.model, "k": ctx.config.kl_top_k,
                         "tokenizer": models.fingerprint(ctx.tokenizer)}).encode())
    for e in ctx.examples:
        h.update(json.dumps([e[PREFIX + "input_ids"], e[PREFIX + "labels"]]).encode())
    return h.hexdigest()[:16]


def add_perturbed_copies(ctx: RunContext) -> None:
    """Attach the tokenised perturbed copy of each example (``perturbed_*`` features)."""
    seed = ctx.config.options(KLOptions).perturb_seed  # None when the method has no KL term
    perturbed = entity_perturb(ctx.records, seed=ctx.config.seed if seed is None else seed)
    encoded = encode_records(ctx.tokenizer, perturbed, ctx.config.max_length)
    for example, enc in zip(ctx.examples, encoded, strict=True):
        example[PREFIX + "input_ids"] = enc["input_ids"]
        example[PREFIX + "labels"] = enc["labels"]
    ctx.notes["perturbed_examples"] = [
        {"question": p.question, "from": r.subject, "to": p.subject}
        for r, p in list(zip(ctx.records, perturbed, strict=True))[:5]]


@register_term("kl", options=(KLOptions, CachedLogprobOptions))
def build_kl_term(ctx: RunContext) -> KLToBase:
    """Perturb the data and set up p_base the way the config asks."""
    cfg = ctx.config
    add_perturbed_copies(ctx)
    if cfg.kl_reference == "live":
        base = None if ctx.parameters == "lora" else copy.deepcopy(ctx.model).eval()
        if base is not None:
            base.requires_grad_(False)
        return KLToBase(LiveReference(base), weight=cfg.gamma)
    fingerprint = cache_fingerprint(ctx)
    path = Path(cfg.kl_cache) if cfg.kl_cache else None
    if path is not None and path.is_file():
        reference = CachedReference.load(path, fingerprint)
    else:
        reference = once_across_processes(
            "kl-cache", cfg.output,
            lambda: CachedReference.compute(ctx.model, ctx.examples, ctx.tokenizer.pad_token_id,
                                            cfg.kl_top_k, progress=cfg.progress), ctx.notes)
        if path is not None and is_main_process():
            reference.save(path, fingerprint)
    ctx.notes["kl_cache"] = {"fingerprint": fingerprint, "top_k": cfg.kl_top_k,
                             "positions": sum(t.shape[0] for t in reference.top_logp)}
    return KLToBase(reference, weight=cfg.gamma)


__all__ = ["CachedLogprobOptions", "CachedReference", "KLOptions", "KLToBase", "LiveReference",
           "kl_full", "kl_topk"]
