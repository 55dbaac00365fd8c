"""The retain set as an extra input group of every forget example, and the loss term
``retain-ce`` (cross-entropy on the retain answers: the "descent" half of GradDiff).

The forget set is the training data. Each forget example gets one retain partner,
``retain_input_ids`` / ``retain_labels``, which the trainer runs in the same forward pass as
the batch (``extra_forward``). Partners come from a seeded shuffle of the retain set. When
the retain set is the larger one, the transform ``cover-retain`` first cycles the forget
records up to its size and divides the run's epochs by the same factor: every forget example
is still seen ``epochs`` times, as with methods that have no retain term, but each repeat
meets another retain partner, so the retain term anchors as many retain examples as the run
has room for instead of only as many as there are forget examples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from pydantic import Field

from forgetkit.config import Options
from forgetkit.data.formats import Fields
from forgetkit.data.records import QARecord, read_qa
from forgetkit.errors import UserError
from forgetkit.lm.tokenize import encode_records
from forgetkit.train.losses import answer_cross_entropy
from forgetkit.train.registry import RunContext, register_term, register_transform

PREFIX = "retain_"


def retain_records(ctx: RunContext) -> list[QARecord]:
    path = getattr(ctx.config, "retain", None)
    if path is None:
        raise UserError("this method needs a retain set; run it with `forgetkit unlearn "
                         "--retain FILE` (forgetkit.config.UnlearnConfig)")
    return read_qa(path, Fields.of(ctx.config))


@register_transform("cover-retain")
def cover_retain(ctx: RunContext) -> list[QARecord]:
    """The forget records cycled up to the retain set's size, epochs divided to match."""
    n_forget, n_retain = len(ctx.records), len(retain_records(ctx))
    if not n_forget or n_retain <= n_forget:
        return ctx.records
    epochs = ctx.config.epochs * n_forget / n_retain
    ctx.notes["cover_retain"] = {"forget_records": n_forget, "examples": n_retain,
                                 "epochs": epochs, "forget_passes": ctx.config.epochs}
    ctx.config = ctx.config.model_copy(update={"epochs": epochs})
    return [ctx.records[i % n_forget] for i in range(n_retain)]


def forget_records(ctx: RunContext) -> list[QARecord]:
    """The forget set as given, without the repeats ``cover-retain`` made."""
    covered = ctx.notes.get("cover_retain")
    return ctx.records[:covered["forget_records"]] if covered else ctx.records


def attach_retain(ctx: RunContext) -> None:
    """Give every example its retain partner; a second call (another term) is a no-op."""
    if ctx.examples and PREFIX + "input_ids" in ctx.examples[0]:
        return
    records = retain_records(ctx)
    encoded = encode_records(ctx.tokenizer, records, ctx.config.max_length)
    order = list(range(len(records)))
    random.Random(f"retain:{ctx.config.seed}").shuffle(order)
    for i, example in enumerate(ctx.examples):
        j = order[i % len(order)]
        example[PREFIX + "input_ids"] = encoded[j]["input_ids"]
        example[PREFIX + "labels"] = encoded[j]["labels"]
    ctx.notes["retain"] = {"records": len(records),
                           "paired": len(set(order[:len(ctx.examples)]))}


@dataclass
class RetainCrossEntropy:
    weight: float = 1.0
    name: str = "retain_ce"
    needs_hidden_states: bool = False
    extra_forward: str = PREFIX

    def __call__(self, ctx) -> torch.Tensor:
        return answer_cross_entropy(ctx.extra_outputs[PREFIX].logits, ctx.extras[PREFIX + "labels"])


class RetainOptions(Options):
    retain_weight: float = Field(1.0, ge=0, description="weight of the retain term")


@register_term("retain-ce", options=RetainOptions)
def build_retain_ce(ctx: RunContext) -> RetainCrossEntropy:
    attach_retain(ctx)
    return RetainCrossEntropy(weight=ctx.config.retain_weight)


__all__ = ["PREFIX", "RetainCrossEntropy", "attach_retain", "cover_retain", "forget_records",
           "retain_records"]
