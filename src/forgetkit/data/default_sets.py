"""The question sets forgetkit ships, so an audit (and the training monitor) measures
ignorance awareness and known facts even when the user brings only models.

* ``unverifiable.jsonl``: 100 questions about made-up entities (imaginary sports, towns,
  novels, companies...), one entity each; the right answer is a refusal that names it.
  They are drawn with their own seed, and no entity is one that the embedded aligned base
  (``forgetkit prepare-base``) or the demo studies were trained or tested on.
* ``monitor_unverifiable.jsonl``: 32 more such questions for the training monitor, with
  entities of their own: a fine-tune chosen by the monitor's rules was chosen on these, so
  an audit's IDK on ``unverifiable.jsonl`` stays a held-out measurement of it.
* ``known.jsonl``: general-knowledge questions a small instruct model answers, each with
  the keywords that mark an answer correct. The embedded aligned base saw some of them
  during its alignment, in its own words: they measure knowledge kept, not learned.

* ``judge_agreement.jsonl``: 548 real answers of the demo's models to questions about
  entities they never saw, each labelled by hand as a refusal or not
  (``eval.judge.agreement``): how far the refusal judges can be trusted.

The question files are package data in ``data/sets/``, written by ``write_default_sets`` (a
test checks they are what it writes, so they can be regenerated and reviewed); the labelled
answers are written by hand and only read.
"""

from __future__ import annotations

from pathlib import Path

from forgetkit.data.records import QARecord, write_qa
from forgetkit.data.synth import synth
from forgetkit.data.synth.known import KNOWN_POOL

FOLDER = Path(__file__).resolve().parent / "sets"
UNVERIFIABLE = FOLDER / "unverifiable.jsonl"
MONITOR_UNVERIFIABLE = FOLDER / "monitor_unverifiable.jsonl"
KNOWN = FOLDER / "known.jsonl"
JUDGE_AGREEMENT = FOLDER / "judge_agreement.jsonl"  # hand-labelled, not generated
N_UNVERIFIABLE = 100
N_MONITOR = 32
SEED = 2026
MONITOR_SEED = 2027
# Seeds whose unverifiable entities the embedded base and the studies use (studies.base:
# 1234; studies.seat: 7 + 1): excluded from the shipped set.
_TAKEN_SEEDS = (1234, 8)


def _fresh_unverifiable(n: int, seed: int, taken: set[str]) -> list[QARecord]:
    records, subjects = [], set(taken)
    for r in synth("unverifiable", 3 * n, seed=seed):
        if r.subject not in subjects:
            subjects.add(r.subject)
            records.append(r)
    return records[:n]


def _taken() -> set[str]:
    return {r.subject for seed in _TAKEN_SEEDS for r in synth("unverifiable", 200, seed=seed)}


def default_unverifiable() -> list[QARecord]:
    return _fresh_unverifiable(N_UNVERIFIABLE, SEED, _taken())


def monitor_unverifiable() -> list[QARecord]:
    """Disjoint from ``default_unverifiable`` and from every taken entity."""
    audit = {r.subject for r in default_unverifiable()}
    return _fresh_unverifiable(N_MONITOR, MONITOR_SEED, _taken() | audit)


def default_known() -> list[QARecord]:
    return synth("known", len(KNOWN_POOL), seed=SEED)


def write_default_sets(folder: Path = FOLDER) -> tuple[Path, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return (write_qa(default_unverifiable(), folder / UNVERIFIABLE.name),
            write_qa(default_known(), folder / KNOWN.name),
            write_qa(monitor_unverifiable(), folder / MONITOR_UNVERIFIABLE.name))


__all__ = ["KNOWN", "MONITOR_UNVERIFIABLE", "UNVERIFIABLE", "default_known",
           "default_unverifiable", "monitor_unverifiable", "write_default_sets"]
