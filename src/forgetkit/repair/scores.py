"""Partition-conditional repair scores (DG-Hard paper, sec. 4.3).

Average accuracy hides per-benchmark failures, and a plain recovery score rewards reverting to
the base. So each held-out measure is first put in a partition by what the fine-tune did to it
(tolerance ``tol``; all values oriented so that higher is better):

    damaged    ft < base - tol   healed    = clip((rep - ft)   / (base - ft), 0, 1)
    improved   ft > base + tol   preserved = clip((rep - base) / (ft - base), 0, 1)
    unchanged  otherwise         non-damage: 1 if rep >= base - tol else 0

and the target measure gives

    retention = clip((rep_t - base_t) / (ft_t - base_t), 0, 1)

Each component is the mean over its partition; ``combined`` is their harmonic mean over the
components that exist. Reverting to the base gives retention 0 and so combined 0; doing
nothing gives healed 0 (when something was damaged) and so combined 0.

Tables title these scores by their entries in ``eval.registry`` (this layer sits below eval
and names none of them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forgetkit.errors import UserError

COMPONENTS = ("healed", "preserved", "non_damage", "retention")


@dataclass
class RepairScores:
    """Scores in [0, 1] (None when the partition is empty) and the per-measure detail."""

    healed: float | None
    preserved: float | None
    non_damage: float | None
    retention: float | None
    combined: float | None
    partitions: dict[str, list[str]] = field(default_factory=dict)
    measures: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"healed": self.healed, "preserved": self.preserved,
                "non_damage": self.non_damage, "retention": self.retention,
                "combined": self.combined, "partitions": self.partitions,
                "measures": self.measures}


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def harmonic_mean(values: Iterable[float]) -> float | None:
    """Harmonic mean; 0 as soon as one value is 0 (a failed component cannot be averaged away)."""
    values = list(values)
    if not values:
        return None
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def repair_scores(base: Mapping[str, float], finetuned: Mapping[str, float],
                  repaired: Mapping[str, float], target: str, *,
                  lower_is_better: Iterable[str] = (),
                  tolerance: float | Mapping[str, float] = 0.01) -> RepairScores:
    """Score a repair from three score tables (measure -> value) of the same measures.

    target: the fine-tuning task's measure; every other measure is held out.
    lower_is_better: measures where smaller is better (perplexity, harmful rate); they are
        negated before anything else.
    tolerance: change below which the fine-tune counts as leaving a measure unchanged; one
        value for all measures or one per measure (absolute, in the measure's units).
    """
    measures = list(base)
    missing = [m for m in measures if m not in finetuned or m not in repaired]
    extra = [m for m in [*finetuned, *repaired] if m not in base]
    if missing or extra:
        raise UserError(f"score tables must hold the same measures; missing from fine-tuned or "
                         f"repaired: {missing}, absent from base: {sorted(set(extra))}")
    if target not in base:
        raise UserError(f"target measure {target!r} is not in the tables ({measures})")
    flip = set(lower_is_better)
    unknown = flip - set(measures)
    if unknown:
        raise UserError(f"lower_is_better names unknown measures: {sorted(unknown)}")

    for name, table in (("base", base), ("fine-tuned", finetuned), ("repaired", repaired)):
        bad = [m for m in measures if not math.isfinite(float(table[m]))]
        if bad:
            raise UserError(f"{name} scores are not finite for {bad}; fix or drop those "
                             "measures before scoring")
    tolerances = tolerance if isinstance(tolerance, Mapping) else dict.fromkeys(measures,
                                                                                 tolerance)
    lacking = [m for m in measures if m not in tolerances]
    if lacking:
        raise UserError(f"tolerance has no value for {lacking}; give one per measure or a "
                         "single number")
    negative = {m: t for m, t in tolerances.items() if float(t) < 0}
    if negative:
        raise UserError(f"tolerance must be >= 0, got {negative}")

    def oriented(table: Mapping[str, float], m: str) -> float:
        return -float(table[m]) if m in flip else float(table[m])

    def tol(m: str) -> float:
        return float(tolerances[m])

    parts: dict[str, list[str]] = {"damaged": [], "improved": [], "unchanged": []}
    scores: dict[str, list[float]] = {"healed": [], "preserved": [], "non_damage": []}
    detail = []
    for m in measures:
        b, f, r = (oriented(t, m) for t in (base, finetuned, repaired))
        if m == target:
            gain = f - b
            score = _clip01((r - b) / gain) if gain > tol(m) else None
            detail.append({"measure": m, "partition": "target", "base": b, "finetuned": f,
                           "repaired": r, "score": score})
            continue
        if f < b - tol(m):
            part, key, score = "damaged", "healed", _clip01((r - f) / (b - f))
        elif f > b + tol(m):
            part, key, score = "improved", "preserved", _clip01((r - b) / (f - b))
        else:
            part, key, score = "unchanged", "non_damage", 1.0 if r >= b - tol(m) else 0.0
        parts[part].append(m)
        scores[key].append(score)
        detail.append({"measure": m, "partition": part, "base": b, "finetuned": f,
                       "repaired": r, "score": score})

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    retention = detail[[d["measure"] for d in detail].index(target)]["score"]
    values = {"healed": mean(scores["healed"]), "preserved": mean(scores["preserved"]),
              "non_damage": mean(scores["non_damage"]), "retention": retention}
    combined = harmonic_mean(v for v in values.values() if v is not None)
    return RepairScores(**values, combined=combined, partitions=parts, measures=detail)
