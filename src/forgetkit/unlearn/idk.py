"""``idk``: fine-tune the forget questions to refusals, loss = CE(refusal) + w * CE(retain).

Data transform ``idk`` replaces every forget answer with a context-aware refusal naming the
subject (``lm.refusals.REFUSAL_TEMPLATES``, drawn with a seeded generator); TOFU's "IDK"
baseline. It teaches the model to *say* it does not know, which is what KIF's evaluation
tells apart from erasing the knowledge.
"""

from __future__ import annotations

import random
from dataclasses import replace

from forgetkit.data.records import QARecord
from forgetkit.data.synth import refusal
from forgetkit.train import losses  # noqa: F401  (registers ce)
from forgetkit.train.registry import RunContext, register_transform
from forgetkit.unlearn import retain  # noqa: F401  (registers retain-ce)
from forgetkit.unlearn.registry import UnlearningMethod, register_unlearning


@register_transform("idk")
def idk(ctx: RunContext) -> list[QARecord]:
    rng = random.Random(f"idk:{ctx.config.seed}")
    out = [replace(r, answer=refusal(r.subject or "that", rng),
                   meta={**r.meta, "original_answer": r.answer}) for r in ctx.records]
    ctx.notes["idk"] = {"examples": [{"question": r.question, "answer": r.answer}
                                     for r in out[:3]]}
    return out


IDK = register_unlearning(UnlearningMethod(
    "idk", "fine-tune the forget questions to refusals, cross-entropy on the retain answers",
    terms=("ce", "retain-ce"), transforms=("idk",)))

__all__ = ["IDK", "idk"]
