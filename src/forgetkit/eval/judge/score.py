"""Judged IDK (the paper's IDK_HA stand-in): refusal AND names the entity; judge agreement."""

from __future__ import annotations

from collections.abc import Sequence

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.eval.judge.base import RefusalJudge
from forgetkit.eval.judge.entity import refers_to_entity


def judged_refusals(records: Sequence[QARecord], answers: Sequence[str],
                    judge: RefusalJudge) -> list[dict[str, bool]]:
    """Per answer: ``refusal`` (the judge), ``entity`` (names the subject), ``idk`` (both)."""
    if len(records) != len(answers):
        raise UserError(f"need one answer per record, got {len(answers)} answers for "
                         f"{len(records)} records")
    refusals = judge.judge_refusals([r.question for r in records], list(answers))
    out = []
    for record, answer, refused in zip(records, answers, refusals, strict=True):
        entity = refers_to_entity(answer, record)
        out.append({"refusal": bool(refused), "entity": entity, "idk": bool(refused) and entity})
    return out


def judged_idk(records: Sequence[QARecord], answers: Sequence[str],
               judge: RefusalJudge) -> float:
    """Judged IDK (stand-in for IDK_HA): share of answers that refuse AND name the entity."""
    if not records:
        raise UserError("judged_idk needs at least one record")
    per = judged_refusals(records, answers, judge)
    return sum(p["idk"] for p in per) / len(per)


def agreement(a: Sequence[bool], b: Sequence[bool]) -> dict[str, float]:
    """Accuracy and Cohen's kappa between two lists of binary decisions.

    kappa = (p_o - p_e) / (1 - p_e), p_e the agreement expected from the two marginals. When
    p_e = 1 (both lists constant and equal) kappa is taken as 1.0.
    """
    if len(a) != len(b) or not a:
        raise UserError(f"agreement needs two equally long, non-empty lists, got {len(a)} "
                         f"and {len(b)}")
    n = len(a)
    p_o = sum(bool(x) == bool(y) for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(map(bool, a)) / n, sum(map(bool, b)) / n
    p_e = pa * pb + (1 - pa) * (1 - pb)
    kappa = 1.0 if p_e >= 1.0 else (p_o - p_e) / (1 - p_e)
    return {"accuracy": p_o, "cohen_kappa": kappa}


__all__ = ["agreement", "judged_idk", "judged_refusals"]
