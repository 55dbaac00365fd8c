"""Method ``l2-to-base``: full fine-tuning + lambda/2 * ||theta - theta_base||^2 (L2-SP,
Li et al. 2018), the plainest way to hold a fine-tune near its base.

The whole method is this file: its options, its loss term and its row in the method table.
It is EWC with every weight equally important (the same penalty, ``fisher`` None), so it
shows what EWC's Fisher adds.
"""

from __future__ import annotations

from pydantic import Field

from forgetkit.config import Options
from forgetkit.train.ewc import EWCPenalty
from forgetkit.train.registry import Method, RunContext, register_method, register_term


class L2ToBaseOptions(Options):
    l2_lambda: float = Field(0.01, ge=0, description="weight of the squared distance to the "
                             "base weights")


@register_term("l2-to-base", options=L2ToBaseOptions)
def build_l2_to_base(ctx: RunContext) -> EWCPenalty:
    anchor = {n: p.detach().clone() for n, p in ctx.model.named_parameters() if p.requires_grad}
    return EWCPenalty(None, anchor, weight=ctx.config.options(L2ToBaseOptions).l2_lambda,
                      name="l2_to_base")


register_method(Method("l2-to-base", "full fine-tuning + lambda/2 * squared distance to the "
                       "base weights (L2-SP)", "full", ("ce", "l2-to-base"),
                       default_learning_rate=1e-5))
