"""Data transform ``known-subjects``: warn when a forget subject is unknown to the model.

Run first by every unlearning method, while the model is still untouched; it returns the
records unchanged. A model that knows a subject answers questions about it better when the
question names it than when a stranger's name stands in its place. The check compares the
mean answer log-likelihood per token, question with the real name vs the same question with
a fresh fictitious name (``data.perturb.entity_perturb``): a gain below
``MIN_GAIN`` nats per token means there is nothing to forget about that subject.
"""

from __future__ import annotations

import warnings

from forgetkit.data.perturb import entity_perturb, replace_subject
from forgetkit.data.records import QARecord
from forgetkit.errors import ForgetkitWarning
from forgetkit.lm.scoring import answer_logprobs
from forgetkit.lm.tokenize import encode_records
from forgetkit.train.registry import RunContext, register_transform

MIN_GAIN = 0.1  # nats per answer token


class UnknownSubjectWarning(ForgetkitWarning):
    """A forget subject the model does not know: unlearning has nothing to remove."""


def _names_subject(record: QARecord) -> bool:
    if record.subject is None:
        return False
    try:
        replace_subject(record.question, record.subject, "x")
    except ValueError:
        return False
    return True


def subject_knowledge(ctx: RunContext, records: list[QARecord]) -> dict[str, float]:
    """Per subject: mean answer log-likelihood gain (nats/token) of naming it."""
    checked = [r for r in records if _names_subject(r)]
    if not checked:
        return {}
    real = encode_records(ctx.tokenizer, checked, ctx.config.max_length)
    fake = encode_records(ctx.tokenizer, entity_perturb(checked, seed=ctx.config.seed),
                          ctx.config.max_length)
    pad = ctx.tokenizer.pad_token_id
    real_sum, real_n = answer_logprobs(ctx.model, real, pad)
    fake_sum, fake_n = answer_logprobs(ctx.model, fake, pad)
    gains: dict[str, list[float]] = {}
    for r, rs, rn, fs, fn in zip(checked, real_sum, real_n, fake_sum, fake_n, strict=True):
        gains.setdefault(r.subject, []).append(float(rs / rn.clamp(min=1) - fs / fn.clamp(min=1)))
    return {s: sum(v) / len(v) for s, v in gains.items()}


@register_transform("known-subjects")
def known_subjects(ctx: RunContext) -> list[QARecord]:
    gains = subject_knowledge(ctx, ctx.records)
    unknown = [s for s, g in gains.items() if g < MIN_GAIN]
    ctx.notes["forget_subjects"] = {
        "gain_nats_per_token": {s: round(g, 4) for s, g in gains.items()},
        "unknown": unknown, "min_gain": MIN_GAIN}
    for subject in unknown:
        warnings.warn(
            f"forget subject {subject!r}: the model does not seem to know it (naming it "
            f"raises the answers' log-likelihood by {gains[subject]:.3f} nats per token, below "
            f"{MIN_GAIN}), so there is nothing to forget; check the forget set and the model",
            UnknownSubjectWarning, stacklevel=2)
    return ctx.records


__all__ = ["MIN_GAIN", "UnknownSubjectWarning", "known_subjects", "subject_knowledge"]
