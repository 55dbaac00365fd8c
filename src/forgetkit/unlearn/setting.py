"""The unlearning setting: fictitious authors split by subject into forget and retain sets.

A model fine-tuned on ``all`` knows every author; unlearning removes the ``forget`` authors
and keeps the ``retain`` ones; a model fine-tuned on ``retain`` alone is the oracle that never
saw the forgotten authors (TOFU's forget01/05/10 design, with the share as an option).
``check_sets`` holds the checks every unlearning run makes on its two sets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from forgetkit.data.records import DataError, QARecord, write_qa
from forgetkit.data.synth import authors, split_by_subject
from forgetkit.errors import UserError
from forgetkit.io import atomic_output_dir, atomic_write_json

FILES = ("forget.jsonl", "retain.jsonl", "all.jsonl")


@dataclass(frozen=True)
class UnlearningSetting:
    forget: list[QARecord]
    retain: list[QARecord]
    all_records: list[QARecord]
    seed: int

    @property
    def forget_subjects(self) -> list[str]:
        return subjects(self.forget)


def subjects(records: Sequence[QARecord]) -> list[str]:
    """The records' subjects in order of first appearance (records without one skipped)."""
    return list(dict.fromkeys(r.subject for r in records if r.subject is not None))


def forget_count(forget: float, n_authors: int) -> int:
    """How many authors ``forget`` means: a share in (0, 1), rounded, at least one; or a
    whole number of authors. At least one author must remain on each side."""
    if isinstance(forget, bool) or forget <= 0:
        raise UserError(f"forget must be a share in (0, 1) or a number of authors, got {forget}")
    if forget < 1:
        count = max(1, round(forget * n_authors))
    elif float(forget).is_integer():
        count = int(forget)
    else:
        raise UserError(f"forget {forget}: a share must be below 1, a number of authors whole")
    if not 1 <= count < n_authors:
        raise UserError(f"forgetting {count} of {n_authors} authors leaves nothing to retain; "
                         f"choose between 1 and {n_authors - 1} authors")
    return count


def build_setting(n_authors: int = 20, forget: float = 0.1, seed: int = 0) -> UnlearningSetting:
    """``n_authors`` fictitious authors (20 questions each), ``forget`` of them to forget.

    The same seed gives the same authors and the same forgotten ones. Records keep their
    ``meta`` (paraphrases and perturbed answers), which the evaluation reads.
    """
    if n_authors < 2:
        raise UserError(f"the setting needs at least 2 authors (one to forget, one to keep), "
                         f"got {n_authors}")
    records = authors(n_authors, seed)
    retain, forgotten = split_by_subject(records, forget_count(forget, n_authors), seed)
    return UnlearningSetting(forget=forgotten, retain=retain, all_records=records, seed=seed)


def write_setting(setting: UnlearningSetting, output: str | os.PathLike[str],
                  overwrite: bool = False) -> Path:
    """Write ``forget.jsonl``, ``retain.jsonl``, ``all.jsonl`` and ``setting.json``,
    atomically; an existing folder is refused unless ``overwrite``."""
    with atomic_output_dir(output, overwrite) as tmp:
        for name, records in zip(FILES, (setting.forget, setting.retain, setting.all_records),
                                 strict=True):
            write_qa(records, tmp / name)
        atomic_write_json(tmp / "setting.json", {
            "generator": "authors", "seed": setting.seed,
            "authors": len(subjects(setting.all_records)),
            "forget_subjects": setting.forget_subjects,
            "retain_subjects": subjects(setting.retain),
            "records": {"forget": len(setting.forget), "retain": len(setting.retain),
                        "all": len(setting.all_records)}})
    return Path(output)


def check_sets(forget: Sequence[QARecord], retain: Sequence[QARecord],
               forget_name: str = "forget set", retain_name: str = "retain set") -> None:
    """Refuse an empty set and sets that overlap.

    Overlap is a subject in both sets; records without a subject overlap when they ask the
    same question. Raises ``DataError`` naming the sets and what they share.
    """
    for name, records in ((forget_name, forget), (retain_name, retain)):
        if not records:
            raise DataError(f"{name}: empty; unlearning needs at least one record in each set")
    shared = sorted(set(subjects(forget)) & set(subjects(retain)))
    if shared:
        raise DataError(f"{forget_name} and {retain_name} share {len(shared)} subject(s): "
                        f"{', '.join(map(repr, shared[:5]))}; a subject is either forgotten "
                        "or kept, so remove it from one of the sets")
    questions = {r.question for r in retain}
    same = [r.question for r in forget if r.question in questions]
    if same:
        raise DataError(f"{forget_name} and {retain_name} share {len(same)} question(s), e.g. "
                        f"{same[0]!r}; a question is either forgotten or kept")


__all__ = ["FILES", "UnlearningSetting", "build_setting", "check_sets", "forget_count",
           "subjects", "write_setting"]
