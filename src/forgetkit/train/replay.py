"""Data transform ``replay``: experience replay as in the SEAT paper's baseline.

Unseen questions answered with the base model's own refusals are mixed into the training
set, ``replay_ratio`` of them per training example (the paper fixes the ratio at 1.0), so
every epoch rehearses "I don't know" on unknown entities while learning the new facts.
"""

from __future__ import annotations

from pydantic import Field

from forgetkit.config import Options
from forgetkit.data.records import QARecord
from forgetkit.train.registry import RunContext, register_transform
from forgetkit.train.unseen import base_answered_unseen


class ReplayOptions(Options):
    replay_ratio: float = Field(1.0, ge=0, description="replayed refusals per training example")


@register_transform("replay", options=ReplayOptions)
def replay(ctx: RunContext) -> list[QARecord]:
    n = round(ctx.config.replay_ratio * len(ctx.records))
    if n == 0:
        return ctx.records
    rehearsal = base_answered_unseen(ctx, n, refusals_only=True)
    ctx.notes["replay"] = {"ratio": ctx.config.replay_ratio, "examples": len(rehearsal)}
    return ctx.records + rehearsal
