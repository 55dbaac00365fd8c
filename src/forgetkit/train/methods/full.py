"""``full``: plain supervised fine-tuning of every weight (the paper baseline "Full FT")."""

from __future__ import annotations

from forgetkit.train.losses import CrossEntropy
from forgetkit.train.methods import Method, register


def _prepare(model, config):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


FULL = register(Method(
    name="full",
    description="full fine-tuning with cross-entropy on answer tokens",
    default_learning_rate=1e-5,  # SEAT paper, full fine-tuning
    prepare=_prepare,
    loss_terms=lambda config: [CrossEntropy()],
))
