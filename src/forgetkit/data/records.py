"""QA records and the one reader that turns any accepted data source into them.

A record is one question with its reference answer. ``subject`` is the entity the question
is about (a company, an author, a made-up sport); SEAT perturbs it and KIF forgets it.
``context`` holds the conversation the question is asked in (a system turn, earlier turns),
as ``{role, content}`` messages. Sources and row shapes: ``data/formats.py``. Besides
forgetkit's own fields, a row may carry:

* PISTOL's ``edge``: the two contract parties, or node labels such as ``"A_B"`` as public
  copies store them, in which case the subject is the first party the question names;
* TOFU's ``paraphrased_answer`` and ``perturbed_answer``, kept in ``meta`` for the
  unlearning suite (as ``paraphrased_answer`` and ``perturbed_answers``).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forgetkit.data.formats import DataError, Fields, iter_rows, normalise
from forgetkit.errors import ForgetkitWarning
from forgetkit.io import atomic_write_text


@dataclass(frozen=True)
class QARecord:
    question: str
    answer: str
    subject: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    context: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("subject", "meta", "context"):
            if not out[key]:
                del out[key]
        return out


class UnresolvedSubjectWarning(ForgetkitWarning):
    """Rows whose subject could not be told (PISTOL node labels, no party in the question)."""


_PARTIES = re.compile(r"\bbetween (?P<a>.+?) and (?P<b>.+?)(?=[,;?.]|\s+(?:on|in|for|to|"
                      r"regarding|under|dated|about|that|which)\b|$)")
_COMPANY = re.compile(r"\b[A-Z][\w&'-]*(?:\s+[A-Z][\w&'-]*)*\s+(?:Inc|Ltd|LLC|LLP|PLC|Corp|"
                      r"Corporation|Co|GmbH|AG|SA|Group|Holdings|Company|Limited|Industries|"
                      r"Enterprises|Partners)\b\.?")


def first_party(question: str) -> str | None:
    """The first contract party a question names ("... between Zynthar Corp and ..."), or
    None when it names none this reader can find."""
    match = _PARTIES.search(question)
    if match:
        return match.group("a").strip().removeprefix("the ").strip() or None
    match = _COMPANY.search(question)
    return match.group(0).strip() if match else None


def _edge_subject(edge: Any, question: str, where: str) -> str | None:
    if isinstance(edge, str):
        names = [edge]
    elif isinstance(edge, Sequence) and edge and all(isinstance(e, str) for e in edge):
        names = list(edge)
    else:
        raise DataError(f"{where}: 'edge' must be a party name or a list of party names, "
                        f"got {edge!r}")
    if len(names) == 1 and re.fullmatch(r"\w+_\w+", names[0]):
        names = names[0].split("_")
    if all(len(n) <= 3 and " " not in n for n in names):
        # Node labels ("A_B"), not names: take the party the question names first.
        return first_party(question)
    named = [n for n in names if n.strip() and n in question]
    return named[0] if named else names[0]


def make_record(row: dict[str, Any], where: str) -> QARecord:
    """Validate a normalised row (``formats.normalise``) and make its record."""
    question, answer, subject, raw = row["question"], row["answer"], row["subject"], row["row"]
    for key, value in (("question", question), ("answer", answer)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: field '{key}' must be a non-empty string, got {value!r}")
    meta = raw.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise DataError(f"{where}: 'meta' must be a JSON object of extra fields, got "
                        f"{type(meta).__name__} {meta!r:.60}")
    meta = dict(meta or {})
    if subject is None and "edge" in raw:
        subject = _edge_subject(raw["edge"], question, where)
    if "edge" in raw:
        meta.setdefault("edge", raw["edge"])
    if subject is not None and (not isinstance(subject, str) or not subject.strip()):
        raise DataError(f"{where}: 'subject' must be a non-empty string, got {subject!r}")
    if raw.get("paraphrased_answer") is not None:  # TOFU's, for the unlearning suite
        meta.setdefault("paraphrased_answer", raw["paraphrased_answer"])
    perturbed = raw.get("perturbed_answer", raw.get("perturbed_answers"))
    if perturbed is not None:
        meta.setdefault("perturbed_answers",
                        [perturbed] if isinstance(perturbed, str) else list(perturbed))
    return QARecord(question=question.strip(), answer=answer.strip(), subject=subject,
                    meta=meta, context=row["context"])


def read_qa(source: str | os.PathLike[str], fields: Fields | None = None) -> list[QARecord]:
    """Read QA records from any data source of ``data/formats.py``.

    Raises ``DataError`` naming the file and line (or row) of malformed input, and for an
    empty source. ``fields`` renames the question, answer and subject columns. PISTOL rows
    whose subject cannot be told are kept without one, with a warning naming them.
    """
    fields = fields or Fields()
    records, unresolved = [], []
    for where, raw in iter_rows(source):
        record = make_record(normalise(raw, where, fields), where)
        if record.subject is None and "edge" in record.meta:
            unresolved.append(where)
        records.append(record)
    if not records:
        raise DataError(f"{source}: the dataset is empty; it needs at least one record")
    if unresolved:
        warnings.warn(f"{len(unresolved)} of {len(records)} records give their parties as "
                      f"node labels ('edge') and name no party this reader can find in the "
                      f"question (first: {unresolved[0]}); they have no subject, so SEAT and "
                      "KIF cannot use them: add a 'subject' field to those rows",
                      UnresolvedSubjectWarning, stacklevel=2)
    return records


def write_qa(records: Iterable[QARecord], path: str | os.PathLike[str]) -> Path:
    """Write records as JSONL atomically (a temporary file renamed into place)."""
    lines = [json.dumps(rec.to_json(), ensure_ascii=False) + "\n" for rec in records]
    return atomic_write_text(path, "".join(lines))


__all__ = ["DataError", "Fields", "QARecord", "UnresolvedSubjectWarning", "first_party",
           "make_record", "read_qa", "write_qa"]
