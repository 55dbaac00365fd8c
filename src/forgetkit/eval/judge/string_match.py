"""The IDK_SM string match as a refusal judge, for comparison with the others."""

from __future__ import annotations

from collections.abc import Sequence

from forgetkit.lm.refusals import is_refusal


class StringMatchJudge:
    """IDK_SM's rule as a judge: a refusal phrase from ``REFUSAL_PHRASES`` appears."""

    name = "string-match"

    def judge_refusals(self, questions: Sequence[str], answers: Sequence[str]) -> list[bool]:
        return [is_refusal(a) for a in answers]


__all__ = ["StringMatchJudge"]
