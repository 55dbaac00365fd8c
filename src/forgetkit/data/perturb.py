"""Entity perturbation (SEAT paper, section 5): one fixed copy of each example whose subject
entity is replaced by a random fictitious name; the answer is unchanged.

SEAT keeps the fine-tuned model's output on these copies close to the base model's, so what
is learned about "Trelvora Dynamics" does not spill over to a neighbouring unknown company.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from forgetkit.data.names import COMPANY_SUFFIXES, NameFactory
from forgetkit.data.records import DataError, QARecord
from forgetkit.errors import UserError


def _pattern(subject: str) -> re.Pattern[str]:
    # Whole-name match, any case, any run of spaces between words of a multi-word name.
    words = [re.escape(w) for w in subject.split()]
    return re.compile(r"(?<![\w])" + r"\s+".join(words) + r"(?![\w])", re.IGNORECASE)


def replace_subject(text: str, subject: str, replacement: str) -> str:
    """Replace every occurrence of ``subject`` in ``text``; error if there is none."""
    new, count = _pattern(subject).subn(replacement, text)
    if count == 0:
        raise UserError(f"subject {subject!r} does not occur in {text!r}")
    return new


def name_kind(record: QARecord) -> str:
    """Which kind of fictitious name stands in for the record's subject."""
    kind = record.meta.get("kind")
    words = (record.subject or "").split()
    if kind == "contracts" or (words and words[-1] in COMPANY_SUFFIXES):
        return "company"
    if kind == "authors":
        return "person"
    if len(words) == 2 and all(w[:1].isupper() for w in words):
        return "person"
    return "concept"


def infer_subjects(records: Sequence[QARecord]) -> list[QARecord]:
    """Give records without a subject the longest known subject of the dataset that occurs
    in their question; a record where none occurs is an error naming it."""
    known = sorted({r.subject for r in records if r.subject}, key=len, reverse=True)
    out = []
    for i, r in enumerate(records):
        if r.subject is None:
            found = next((s for s in known if _pattern(s).search(r.question)), None)
            if found is None:
                raise DataError(
                    f"record {i} ({r.question[:60]!r}) has no 'subject' and none of the "
                    f"dataset's {len(known)} known subjects occurs in its question; add a "
                    "'subject' field naming the entity the question is about")
            r = replace(r, subject=found)
        out.append(r)
    return out


def entity_perturb(records: Sequence[QARecord], seed: int = 0) -> list[QARecord]:
    """One perturbed copy per record: its subject replaced, in the question, by a fictitious
    name of the same kind that is fresh for this copy; the answer is unchanged.

    Names never collide with any subject of the dataset. Raises ``DataError`` naming the
    record when a subject does not occur in its question.
    """
    records = infer_subjects(records)
    names = NameFactory(seed=f"perturb:{seed}", exclude={r.subject for r in records})
    out = []
    for i, r in enumerate(records):
        assert r.subject is not None
        fake = names.new(name_kind(r))
        try:
            question = replace_subject(r.question, r.subject, fake)
        except ValueError:
            raise DataError(f"record {i}: its subject {r.subject!r} never occurs in its "
                            f"question {r.question!r}; fix the 'subject' field") from None
        out.append(replace(r, question=question, subject=fake,
                           meta={**r.meta, "perturbed_from": r.subject}))
    return out
