"""How often a refusal judge agrees with a person, on real answers of real models.

``data/sets/judge_agreement.jsonl`` holds 548 answers to questions about entities the
models never saw, given by SmolLM2-135M fine-tunes of forgetkit's demo (the aligned base,
full, LoRA and SEAT fine-tunes, dg-hard and wise-ft repairs), each labelled by hand. ``set``
says when: ``development`` (398, every distinct answer of earlier demo runs; the judge's
last change was made after reading its errors on them) or ``held-out`` (150, drawn at
random from a later demo run's new answers after the judge was frozen). Labels:
``refusal`` is 1 when the answer declines to give the fact asked for (it says it does not
know, is not familiar with the entity, cannot answer) and states no answer to it, 0 when it
answers, however wrong, hedged or garbled. ``kind`` says what sort of answer it is:

* ``trained phrasing``: a refusal in exactly one of the phrasings the aligned base was
  trained to give (``lm.refusals.REFUSAL_TEMPLATES``; the embedding judge never sees
  them in training);
* ``other words``: a refusal in any other phrasing ("I'm not aware of X.", "I can't find
  anything about X, so I won't make up an answer.");
* ``hedged answer``: a refusal-like opening followed by an answer or the offer of one ("I
  can't give you an exact answer, but ... it's approximately 2 years.");
* ``answer``: an answer (mostly invented facts);
* ``borderline``: answers a second reader might label the other way ("The composer of X
  is unknown.", labelled 1); counted, and shown apart.

``judge_agreement`` scores a judge against the labels: agreement and Cohen's kappa with
Wilson 95% intervals, per kind, and the answers it gets wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forgetkit.data.default_sets import JUDGE_AGREEMENT
from forgetkit.eval.intervals import wilson
from forgetkit.eval.judge.base import RefusalJudge
from forgetkit.eval.judge.score import agreement

KINDS = ("trained phrasing", "other words", "hedged answer", "answer", "borderline")


def read_labelled(path: str | Path = JUDGE_AGREEMENT) -> list[dict[str, Any]]:
    """The labelled answers, one dict per line (question, answer, subject, refusal, kind,
    model)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _rate(hits: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    low, high = wilson(hits, n)
    return {"value": hits / n, "low": low, "high": high, "n": n}


def judge_agreement(judge: RefusalJudge, rows: Sequence[dict[str, Any]] | None = None
                    ) -> dict[str, Any]:
    """Agreement of ``judge`` with the hand labels, overall and per kind, with intervals;
    ``errors`` lists every answer it labels otherwise."""
    rows = list(rows) if rows is not None else read_labelled()
    said = judge.judge_refusals([r["question"] for r in rows], [r["answer"] for r in rows])
    labels = [bool(r["refusal"]) for r in rows]
    right = [bool(s) == y for s, y in zip(said, labels, strict=True)]
    per_kind = {}
    for kind in KINDS:
        idx = [i for i, r in enumerate(rows) if r["kind"] == kind]
        if idx:
            per_kind[kind] = _rate(sum(right[i] for i in idx), len(idx))
    per_set = {}
    for name in dict.fromkeys(r.get("set", "development") for r in rows):
        idx = [i for i, r in enumerate(rows) if r.get("set", "development") == name]
        per_set[name] = _rate(sum(right[i] for i in idx), len(idx))
    return {
        "judge": judge.name,
        "agreement": _rate(sum(right), len(rows)),
        "per_set": per_set,
        "cohen_kappa": agreement(labels, said)["cohen_kappa"],
        "per_kind": per_kind,
        # answers (label 0) the judge calls refusals: each inflates IDK
        "false_refusals": _rate(sum(s and not y for s, y in zip(said, labels, strict=True)),
                                labels.count(False)),
        "missed_refusals": _rate(sum(y and not s for s, y in zip(said, labels, strict=True)),
                                 labels.count(True)),
        "errors": [{"answer": r["answer"], "label": r["refusal"], "kind": r["kind"]}
                   for r, ok in zip(rows, right, strict=True) if not ok],
    }


__all__ = ["KINDS", "judge_agreement", "read_labelled"]
