"""The question sets ``forgetkit audit`` ships, so an audit measures ignorance awareness
and known facts even when the user brings only models.

* ``unverifiable.jsonl``: 100 questions about made-up entities (imaginary sports, towns,
  novels, companies...), one entity each; the right answer is a refusal that names it.
  They are drawn with their own seed, and no entity is one that the embedded aligned base
  (``forgetkit prepare-base``) or the demo studies were trained or tested on.
* ``known.jsonl``: general-knowledge questions a small instruct model answers, each with
  the keywords that mark an answer correct. The embedded aligned base saw some of them
  during its alignment, in its own words: they measure knowledge kept, not learned.

The files are package data, written by ``write_default_sets`` (a test checks they are what
it writes, so they can be regenerated and reviewed).
"""

from __future__ import annotations

from pathlib import Path

from forgetkit.data.records import QARecord, write_qa
from forgetkit.data.synth import synth
from forgetkit.data.synth.known import KNOWN_POOL

FOLDER = Path(__file__).resolve().parent / "data"
UNVERIFIABLE = FOLDER / "unverifiable.jsonl"
KNOWN = FOLDER / "known.jsonl"
N_UNVERIFIABLE = 100
SEED = 2026
# Seeds whose unverifiable entities the embedded base and the studies use (studies.base:
# 1234; studies.seat: 7 + 1): excluded from the shipped set.
_TAKEN_SEEDS = (1234, 8)


def default_unverifiable() -> list[QARecord]:
    taken = {r.subject for seed in _TAKEN_SEEDS for r in synth("unverifiable", 200, seed=seed)}
    records, subjects = [], set()
    for r in synth("unverifiable", 3 * N_UNVERIFIABLE, seed=SEED):
        if r.subject not in taken and r.subject not in subjects:
            subjects.add(r.subject)
            records.append(r)
    return records[:N_UNVERIFIABLE]


def default_known() -> list[QARecord]:
    return synth("known", len(KNOWN_POOL), seed=SEED)


def write_default_sets(folder: Path = FOLDER) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return (write_qa(default_unverifiable(), folder / UNVERIFIABLE.name),
            write_qa(default_known(), folder / KNOWN.name))


__all__ = ["KNOWN", "UNVERIFIABLE", "default_known", "default_unverifiable",
           "write_default_sets"]
