"""Method ``l2-to-base``: full fine-tuning + lambda/2 * ||theta - theta_base||^2 (L2-SP,
Li et al. 2018), the plainest way to hold a fine-tune near its base.

The whole method is this file: its options, its loss term and its row in the method table.
It is EWC with every weight equally important, so it shows what EWC's Fisher adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field

from forgetkit.config import Options
from forgetkit.train.registry import Method, RunContext, register_method, register_term


class L2ToBaseOptions(Options):
    l2_lambda: float = Field(0.01, ge=0, description="weight of the squared distance to the "
                             "base weights")


@dataclass
class L2ToBase:
    anchor: dict[str, torch.Tensor]
    weight: float
    name: str = "l2_to_base"
    needs_hidden_states: bool = False

    def __call__(self, ctx) -> torch.Tensor:
        model = ctx.trainer.accelerator.unwrap_model(ctx.model) if ctx.trainer else ctx.model
        total = torch.zeros((), device=next(model.parameters()).device)
        for name, p in model.named_parameters():
            if name in self.anchor:
                total = total + ((p - self.anchor[name].to(p.device)) ** 2).sum()
        return 0.5 * total


@register_term("l2-to-base", options=L2ToBaseOptions)
def build_l2_to_base(ctx: RunContext) -> L2ToBase:
    anchor = {n: p.detach().clone() for n, p in ctx.model.named_parameters() if p.requires_grad}
    return L2ToBase(anchor, weight=ctx.config.options(L2ToBaseOptions).l2_lambda)


register_method(Method("l2-to-base", "full fine-tuning + lambda/2 * squared distance to the "
                       "base weights (L2-SP)", "full", ("ce", "l2-to-base"),
                       default_learning_rate=1e-5))
