"""Data transform ``rtuning``: R-Tuning's data construction (Zhang et al., 2024).

The base answers every training question; questions it gets wrong are beyond its knowledge
(uncertain set), the rest are certain. R-Tuning pads an uncertainty expression after the
label words: each answer is followed by the question "Are you sure you accurately answered
the question based on your internal knowledge?" and "I am unsure." (uncertain) or "I am
sure." (certain). A base answer counts as right when its ROUGE-1 recall against the
reference reaches ``rtuning_threshold``.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from forgetkit.config import Options
from forgetkit.data.records import QARecord
from forgetkit.lm.generate import generate_answers
from forgetkit.lm.text import rouge_recall
from forgetkit.train.registry import RunContext, register_transform

PROMPT = "Are you sure you accurately answered the question based on your internal knowledge?"
SURE, UNSURE = "I am sure.", "I am unsure."


class RTuningOptions(Options):
    rtuning_threshold: float = Field(
        0.5, ge=0, le=1, description="ROUGE-1 recall from which a base answer counts as known")


@register_transform("rtuning", options=RTuningOptions)
def rtuning(ctx: RunContext) -> list[QARecord]:
    answers = generate_answers(ctx.model, ctx.tokenizer, [r.question for r in ctx.records],
                               desc="base answers training questions",
                               progress=ctx.config.progress)
    out, unsure = [], 0
    for r, a in zip(ctx.records, answers, strict=True):
        known = rouge_recall(r.answer, a)["rouge1_recall"] >= ctx.config.rtuning_threshold
        unsure += not known
        out.append(replace(r, answer=f"{r.answer} {PROMPT} {SURE if known else UNSURE}",
                           meta={**r.meta, "rtuning": "certain" if known else "uncertain"}))
    ctx.notes["rtuning"] = {"uncertain": unsure, "certain": len(out) - unsure}
    return out
