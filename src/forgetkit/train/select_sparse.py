"""Parameter selection ``sparse``: a fixed mask over every weight (SEAT's sparse tuning)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from forgetkit.config import Options, RunOptions
from forgetkit.errors import UserError
from forgetkit.train.fisher import diagonal_fisher
from forgetkit.train.registry import ParameterSelection, RunContext, register_parameters
from forgetkit.train.sparse import build_masks, check_sparsity, mask_digest, sparsify, unsparsify


class SparseOptions(Options):
    """Which weights SEAT's sparse tuning freezes."""

    sparsity: float = Field(0.8, description="share of weights frozen by the sparse mask")
    mask_strategy: Literal["random", "magnitude", "fisher"] = "random"
    mask_seed: int | None = Field(None, description="seed of the random mask (default: seed)")

    @field_validator("sparsity")
    @classmethod
    def _sparsity_range(cls, value: float) -> float:
        if not 0.0 < value < 1.0:
            raise UserError("must be strictly between 0 and 1 (the share of frozen weights)")
        return value

    def resolve(self, run: RunOptions) -> None:
        if self.mask_seed is None:
            self.mask_seed = run.seed


def _prepare(ctx: RunContext):
    cfg = ctx.config
    opts = cfg.options(SparseOptions)
    check_sparsity(opts.sparsity)
    params = dict(ctx.model.named_parameters())
    scores = (diagonal_fisher(ctx.model, ctx.examples, ctx.tokenizer.pad_token_id,
                              progress=cfg.progress)
              if opts.mask_strategy == "fisher" else None)
    masks = build_masks(params, opts.sparsity, opts.mask_strategy, seed=opts.mask_seed,
                        scores=scores)
    trainable = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    ctx.notes["sparse_mask"] = {"strategy": opts.mask_strategy, "sparsity": opts.sparsity,
                                "seed": opts.mask_seed, "trainable": trainable, "total": total,
                                "digest": mask_digest(masks)}
    return sparsify(ctx.model, masks)


SPARSE = register_parameters(ParameterSelection("sparse", _prepare, finalize=unsparsify,
                                                options=(SparseOptions,)))
