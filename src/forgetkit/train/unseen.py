"""Questions the base model does not know, answered the base's own way.

EWC estimates its Fisher information on them and experience replay trains on them: both
baselines of the SEAT paper need "data representative of the base model's ignorance".
They are synthetic questions about made-up things, drawn with a seed of their own so they
never coincide with evaluation sets, answered by the base model itself (greedy).
"""

from __future__ import annotations

from forgetkit.data.records import QARecord
from forgetkit.data.synth import synth
from forgetkit.errors import UserError
from forgetkit.lm.generate import generate_answers
from forgetkit.lm.refusals import is_refusal
from forgetkit.train.registry import RunContext

UNSEEN_SEED_OFFSET = 10_000


def base_answered_unseen(ctx: RunContext, n: int, refusals_only: bool) -> list[QARecord]:
    """``n`` unseen questions with the base model's greedy answers.

    With ``refusals_only`` only the questions the base refuses are kept (it is asked up to
    four times as many to find them); fewer than ``n`` is an error saying why.
    """
    seen = {r.subject for r in ctx.records if r.subject}
    pool = [r for r in synth("unverifiable", 4 * n if refusals_only else n,
                             seed=ctx.config.seed + UNSEEN_SEED_OFFSET) if r.subject not in seen]
    answers = generate_answers(ctx.model, ctx.tokenizer, [r.question for r in pool],
                               desc="base answers unseen questions",
                               progress=ctx.config.progress)
    out = [QARecord(r.question, a, r.subject, {**r.meta, "source": "base"})
           for r, a in zip(pool, answers, strict=True)
           if a.strip() and (is_refusal(a) or not refusals_only)]
    if len(out) < n:
        raise UserError(f"the base model refused only {len(out)} of {len(pool)} unseen "
                         f"questions, {n} were needed; is the base ignorance-aware? (see "
                         "`forgetkit prepare-base`)")
    return out[:n]
