"""Parameter selection ``sparse``: a fixed mask over every weight (SEAT's sparse tuning)."""

from __future__ import annotations

from forgetkit.train.fisher import diagonal_fisher
from forgetkit.train.registry import ParameterSelection, RunContext, register_parameters
from forgetkit.train.sparse import build_masks, check_sparsity, mask_digest, sparsify, unsparsify


def _prepare(ctx: RunContext):
    cfg = ctx.config
    check_sparsity(cfg.sparsity)
    params = dict(ctx.model.named_parameters())
    scores = (diagonal_fisher(ctx.model, ctx.examples, ctx.tokenizer.pad_token_id,
                              progress=cfg.progress)
              if cfg.mask_strategy == "fisher" else None)
    masks = build_masks(params, cfg.sparsity, cfg.mask_strategy, seed=cfg.mask_seed,
                        scores=scores)
    trainable = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    ctx.notes["sparse_mask"] = {"strategy": cfg.mask_strategy, "sparsity": cfg.sparsity,
                                "seed": cfg.mask_seed, "trainable": trainable, "total": total,
                                "digest": mask_digest(masks)}
    return sparsify(ctx.model, masks)


SPARSE = register_parameters(ParameterSelection("sparse", _prepare, finalize=unsparsify))
