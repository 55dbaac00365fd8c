"""``ga``: gradient ascent on the forget set, loss = -CE(answer | question).

The simplest unlearning baseline: make the forget answers unlikely. Its loss has no floor, so
it damages everything else if run long; ``graddiff`` adds a retain term against that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.registry import RunContext, register_term
from forgetkit.unlearn.registry import UnlearningMethod, register_unlearning


@dataclass
class GradientAscent:
    weight: float = 1.0
    name: str = "ga"
    needs_hidden_states: bool = False

    def __call__(self, ctx) -> torch.Tensor:
        return -answer_cross_entropy(ctx.outputs.logits, ctx.labels)


@register_term("ga")
def build_ga(ctx: RunContext) -> GradientAscent:
    return GradientAscent()


GA = register_unlearning(UnlearningMethod(
    "ga", "gradient ascent on the forget answers", terms=("ga",)))

__all__ = ["GA", "GradientAscent"]
