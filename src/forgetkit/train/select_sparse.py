"""Parameter selection ``sparse``: a fixed mask over every weight (SEAT's sparse tuning)."""

from __future__ import annotations

import torch

from forgetkit.data.tokenize import QACollator
from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.registry import ParameterSelection, RunContext, register_parameters
from forgetkit.train.sparse import build_masks, check_sparsity, mask_digest, sparsify, unsparsify


def fisher_scores(ctx: RunContext, batch_size: int = 8) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher on the training examples: mean squared gradient of CE."""
    model = ctx.model
    params = dict(model.named_parameters())
    scores = {n: torch.zeros_like(p) for n, p in params.items()}
    collate = QACollator(ctx.tokenizer.pad_token_id)
    examples = [{k: e[k] for k in ("input_ids", "labels")} for e in ctx.examples]
    batches = [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]
    model.train()
    for chunk in batches:
        batch = collate(chunk)
        model.zero_grad(set_to_none=True)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        answer_cross_entropy(out.logits, batch["labels"]).backward()
        for n, p in params.items():
            if p.grad is not None:
                scores[n] += p.grad.detach() ** 2 / len(batches)
    model.zero_grad(set_to_none=True)
    return scores


def _prepare(ctx: RunContext):
    cfg = ctx.config
    check_sparsity(cfg.sparsity)
    params = dict(ctx.model.named_parameters())
    scores = fisher_scores(ctx) if cfg.mask_strategy == "fisher" else None
    masks = build_masks(params, cfg.sparsity, cfg.mask_strategy, seed=cfg.mask_seed,
                        scores=scores)
    trainable = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    ctx.notes["sparse_mask"] = {"strategy": cfg.mask_strategy, "sparsity": cfg.sparsity,
                                "seed": cfg.mask_seed, "trainable": trainable, "total": total,
                                "digest": mask_digest(masks)}
    return sparsify(ctx.model, masks)


SPARSE = register_parameters(ParameterSelection("sparse", _prepare, finalize=unsparsify))
