"""Loss term ``ewc``: elastic weight consolidation (Kirkpatrick et al., 2017), as adapted by
the SEAT paper: the Fisher information is estimated on questions the base does not know, so
the weights that carry its ignorance awareness are the ones held in place.

    L_EWC = lambda / 2 * sum_i F_i (theta_i - theta*_i)^2

F is the diagonal empirical Fisher (mean squared gradient of the cross-entropy of the
base's own answers), divided by its mean so that ``ewc_lambda`` does not depend on the
model's size or the loss scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field

from forgetkit.config import Options
from forgetkit.lm.tokenize import encode_records
from forgetkit.train.fisher import diagonal_fisher
from forgetkit.train.processes import once_across_processes
from forgetkit.train.registry import RunContext, register_term
from forgetkit.train.unseen import base_answered_unseen


@dataclass
class EWCPenalty:
    """1/2 sum_i F_i (theta_i - theta*_i)^2 over the anchored weights; ``fisher`` None weighs
    every weight the same (L2-SP, ``l2_to_base.py``)."""

    fisher: dict[str, torch.Tensor] | None
    anchor: dict[str, torch.Tensor]
    weight: float
    name: str = "ewc"
    needs_hidden_states: bool = False

    def __call__(self, ctx) -> torch.Tensor:
        model = ctx.trainer.accelerator.unwrap_model(ctx.model) if ctx.trainer else ctx.model
        total = torch.zeros((), device=next(model.parameters()).device)
        for name, p in model.named_parameters():
            if name in self.anchor:
                squared = (p - self.anchor[name].to(p.device)) ** 2
                if self.fisher is not None:
                    squared = self.fisher[name].to(p.device) * squared
                total = total + squared.sum()
        return 0.5 * total


class EWCOptions(Options):
    """EWC baseline of the SEAT paper: Fisher estimated on questions the base does not know."""

    ewc_lambda: float = Field(0.1, ge=0, description="EWC strength (Fisher divided by its mean)")
    ewc_samples: int = Field(32, ge=1, description="unseen questions the Fisher is estimated on")


@register_term("ewc", options=EWCOptions)
def build_ewc(ctx: RunContext) -> EWCPenalty:
    cfg = ctx.config
    unseen = base_answered_unseen(ctx, cfg.ewc_samples, refusals_only=False)
    examples = encode_records(ctx.tokenizer, unseen, cfg.max_length)
    model = ctx.model
    fisher = once_across_processes(
        "ewc-fisher", cfg.output,
        lambda: diagonal_fisher(model, examples, ctx.tokenizer.pad_token_id,
                                progress=cfg.progress), ctx.notes)
    mean = torch.stack([f.mean() for f in fisher.values()]).mean().clamp_min(1e-30)
    fisher = {n: f / mean for n, f in fisher.items()}
    anchor = {n: p.detach().clone() for n, p in model.named_parameters() if n in fisher}
    ctx.notes["ewc"] = {"samples": len(examples), "lambda": cfg.ewc_lambda,
                        "fisher_mean_raw": float(mean)}
    return EWCPenalty(fisher, anchor, weight=cfg.ewc_lambda)
