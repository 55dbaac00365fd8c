"""The rules of the training monitor: which measured point to keep (``--keep-best``) and
when to stop (``--stop-when``), written as short expressions over the measures' names.

    --keep-best "ft if idk>=0.8"          the highest FT score among points with IDK >= 0.8
    --keep-best "ft + 0.5*idk - kl"       the highest weighted sum
    --keep-best "ft if idk>=0.8, known>=0.5"
    --stop-when "ft>=0.95"                stop once the target is learned
    --stop-when "idk<0.7 or kl>0.2"       stop as soon as either holds

A condition is ``NAME OP NUMBER`` with OP one of ``>= <= > <``; conditions joined by ``,`` or
``and`` must all hold, groups joined by ``or`` hold when any does. Names are the monitor's
measures (``MEASURES``; per-file IDK is ``idk/<file stem>``). Parsing happens when the
config is read, so a typo fails before any model loads.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forgetkit.errors import UserError

# name -> what it is; the monitor logs each as ``monitor/<name>``
MEASURES: dict[str, str] = {
    "ft": "FT score: ROUGE-1 recall of the answers to training questions (the target)",
    "forget": "ROUGE-L recall of the answers to forget questions (unlearning: lower is "
              "more forgotten)",
    "retain": "ROUGE-L recall of the answers to retain questions (unlearning)",
    "idk": "share of unseen questions answered with a refusal (ignorance awareness)",
    "known": "share of known questions answered correctly",
    "kl": "next-token KL(start || now) on generic prompts, in nats",
}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_NAME = r"[a-z]+(?:/[\w.-]+)?"
_CONDITION = re.compile(rf"\s*({_NAME})\s*(>=|<=|>|<)\s*([-+]?\d*\.?\d+(?:e[-+]?\d+)?)\s*$")
_TERM = re.compile(rf"\s*(?:([-+]?\d*\.?\d+)\s*\*\s*)?({_NAME})\s*$")


def check_name(name: str, rule: str, known: Sequence[str] | None = None) -> str:
    base = name.split("/", 1)[0]
    allowed = list(known) if known is not None else list(MEASURES)
    if (name not in allowed and base not in allowed) or ("/" in name and base != "idk"):
        raise UserError(f"'{rule}': unknown measure '{name}'; the monitor measures "
                        f"{', '.join(allowed)} (and idk/<file stem> per unseen file)")
    return name


@dataclass(frozen=True)
class Condition:
    name: str
    op: str
    value: float

    def holds(self, point: Mapping[str, float]) -> bool:
        x = point.get(self.name)
        return x is not None and math.isfinite(x) and _OPS[self.op](x, self.value)

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value:g}"


@dataclass(frozen=True)
class Conditions:
    """Groups of conditions: the whole holds when every condition of any group holds."""

    groups: tuple[tuple[Condition, ...], ...]

    def holds(self, point: Mapping[str, float]) -> bool:
        return any(all(c.holds(point) for c in group) for group in self.groups)

    def names(self) -> set[str]:
        return {c.name for group in self.groups for c in group}

    def __str__(self) -> str:
        return " or ".join(", ".join(map(str, g)) for g in self.groups)


def parse_conditions(text: str, rule: str) -> Conditions:
    groups = []
    for group in re.split(r"\s+or\s+", text.strip()):
        conditions = []
        for part in re.split(r"\s*,\s*|\s+and\s+", group.strip()):
            match = _CONDITION.match(part)
            if not match:
                raise UserError(f"'{rule}': cannot read the condition '{part}'; write "
                                "NAME OP NUMBER, e.g. idk>=0.8 (OP: >=, <=, >, <)")
            name, op, value = match.groups()
            conditions.append(Condition(check_name(name, rule), op, float(value)))
        groups.append(tuple(conditions))
    return Conditions(tuple(groups))


@dataclass(frozen=True)
class KeepBest:
    """Keep the point with the highest ``objective`` (a weighted sum of measures) among the
    points where ``constraint`` holds."""

    objective: tuple[tuple[float, str], ...]
    constraint: Conditions | None = None
    text: str = ""

    def score(self, point: Mapping[str, float]) -> float:
        values = [w * point.get(name, math.nan) for w, name in self.objective]
        total = sum(values)
        return total if math.isfinite(total) else -math.inf

    def allows(self, point: Mapping[str, float]) -> bool:
        return self.constraint is None or self.constraint.holds(point)

    def names(self) -> set[str]:
        return {n for _, n in self.objective} | (self.constraint.names()
                                                 if self.constraint else set())

    def choose(self, points: Sequence[Mapping[str, Any]]) -> tuple[int | None, bool]:
        """(index of the chosen point, whether it met the constraint). Among points that
        meet the constraint, the highest score wins (the earliest on a tie); when none
        meets it, None: the caller keeps the last weights and says so."""
        best, best_score = None, -math.inf
        for i, p in enumerate(points):
            if self.allows(p) and self.score(p) > best_score:
                best, best_score = i, self.score(p)
        return best, best is not None

    def __str__(self) -> str:
        return self.text


def parse_keep_best(text: str) -> KeepBest:
    rule = f"--keep-best {text}"
    objective_text, _, constraint_text = text.partition(" if ")
    if not objective_text.strip():
        raise UserError(f"'{rule}': give what to maximise, e.g. 'ft if idk>=0.8'")
    objective = []
    # split on + and - between terms, keeping the sign with the term that follows
    for term in re.split(r"(?<=[\w)])\s*(?=[+-])", objective_text.strip()):
        sign = -1.0 if term.strip().startswith("-") else 1.0
        match = _TERM.match(term.strip().lstrip("+-"))
        if not match:
            raise UserError(f"'{rule}': cannot read '{term.strip()}'; write a measure or "
                            "WEIGHT*measure, joined by + or -, e.g. 'ft + 0.5*idk - kl'")
        weight, name = match.groups()
        objective.append((sign * (float(weight) if weight else 1.0), check_name(name, rule)))
    constraint = parse_conditions(constraint_text, rule) if constraint_text.strip() else None
    return KeepBest(tuple(objective), constraint, text.strip())


def parse_stop_when(text: str) -> Conditions:
    return parse_conditions(text, f"--stop-when {text}")


__all__ = ["MEASURES", "Condition", "Conditions", "KeepBest", "check_name",
           "parse_conditions", "parse_keep_best", "parse_stop_when"]
