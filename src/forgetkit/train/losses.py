"""Loss terms. A training method's loss is a weighted sum of these (one forward pass shared).

A term is any callable ``term(ctx) -> scalar tensor`` with a ``name`` and a ``weight``; it
reads what it needs from the ``LossContext`` (the batch, the model output, extra inputs such
as an entity-perturbed copy). New methods add terms here, not new trainers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from forgetkit.lm.tokenize import IGNORE_INDEX
from forgetkit.train.registry import register_term


@dataclass
class LossContext:
    model: nn.Module
    inputs: dict[str, torch.Tensor]  # what the model was called with (no labels)
    labels: torch.Tensor
    outputs: Any  # the model output of the shared forward pass
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # term-specific inputs
    # Outputs for extra input groups run in the same forward, keyed by prefix ("perturbed_").
    extra_outputs: dict[str, Any] = field(default_factory=dict)
    trainer: Any = None


class LossTerm(Protocol):
    """``extra_forward``, if a term has it, names an input prefix (e.g. ``"perturbed_"``)
    whose ``<prefix>input_ids`` / ``<prefix>attention_mask`` the trainer runs in the same
    forward pass as the batch; the term finds the result in ``ctx.extra_outputs[prefix]``."""

    name: str
    weight: float
    needs_hidden_states: bool

    def __call__(self, ctx: LossContext) -> torch.Tensor: ...


def answer_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled (answer) positions of a batch."""
    shift_labels = labels[:, 1:]
    answer = shift_labels != IGNORE_INDEX
    # Only answer rows enter the softmax: no [B, T, V] copy of the logits is kept for backward.
    return F.cross_entropy(logits[:, :-1][answer].float(), shift_labels[answer])


@dataclass
class CrossEntropy:
    """CE(answer | prompt): the ordinary supervised fine-tuning loss."""

    weight: float = 1.0
    name: str = "ce"
    needs_hidden_states: bool = False

    def __call__(self, ctx: LossContext) -> torch.Tensor:
        return answer_cross_entropy(ctx.outputs.logits, ctx.labels)


@register_term("ce")
def _ce(ctx) -> CrossEntropy:
    return CrossEntropy()
