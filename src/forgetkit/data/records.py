"""QA records and the readers that turn JSON / JSONL files into them.

A record is one question with its reference answer. ``subject`` is the entity the question
is about (a company, an author, a made-up sport); SEAT perturbs it and KIF forgets it.
Accepted input shapes, per line (JSONL) or per list item (JSON):

* forgetkit's own: ``{"question", "answer", "subject"?, "meta"?}``
* PISTOL: ``{"question", "answer", "edge": [company_a, company_b]}`` -> subject = first party
* TOFU: ``{"question", "answer"}`` (no subject recorded)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forgetkit.errors import UserError
from forgetkit.io import atomic_write_text


class DataError(UserError):
    """A dataset file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class QARecord:
    question: str
    answer: str
    subject: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["subject"] is None:
            del out["subject"]
        if not out["meta"]:
            del out["meta"]
        return out


def _record_from_obj(obj: Any, where: str) -> QARecord:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object with 'question' and 'answer', "
                        f"got {type(obj).__name__}")
    missing = [k for k in ("question", "answer") if k not in obj]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing}; every record needs 'question' "
                        f"and 'answer' (found keys: {sorted(obj)})")
    question, answer = obj["question"], obj["answer"]
    for key, value in (("question", question), ("answer", answer)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: field '{key}' must be a non-empty string, got {value!r}")
    subject = obj.get("subject")
    if subject is None and "edge" in obj:
        # PISTOL records carry the two contract parties as an edge of the knowledge graph.
        edge = obj["edge"]
        if isinstance(edge, str):
            subject = edge
        elif isinstance(edge, Sequence) and edge and isinstance(edge[0], str):
            subject = edge[0]
        else:
            raise DataError(f"{where}: 'edge' must be a party name or a list of party names, "
                            f"got {edge!r}")
    if subject is not None and (not isinstance(subject, str) or not subject.strip()):
        raise DataError(f"{where}: 'subject' must be a non-empty string, got {subject!r}")
    meta = obj.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise DataError(f"{where}: 'meta' must be a JSON object of extra fields, got "
                        f"{type(meta).__name__} {meta!r:.60}")
    meta = dict(meta or {})
    if "edge" in obj:
        meta.setdefault("edge", obj["edge"])
    return QARecord(question=question.strip(), answer=answer.strip(), subject=subject, meta=meta)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {raw[err.start]:#04x} at offset "
                        f"{err.start}); save the file as UTF-8") from None


def read_qa(path: str | os.PathLike[str]) -> list[QARecord]:
    """Read QA records from a JSON array (or ``{"data": [...]}``) or a JSON Lines file.

    Which of the two a file holds is decided by its content, not its name. Raises
    ``DataError`` naming the file and line for malformed input, and for an empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    text = _read_text(path)
    records: list[QARecord] = []
    whole = None
    if text.lstrip().startswith("["):  # a JSON array: errors are the array's
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); the file starts "
                            "with '[', so it is read as one JSON array") from None
    elif text.lstrip().startswith("{"):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # several objects: JSON Lines
        if isinstance(whole, dict) and not isinstance(whole.get("data"), list):
            whole = None  # one record on its own: read as a line
    if whole is None:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg} at column "
                                f"{err.colno}); JSON Lines files hold one object per line, "
                                "JSON files one array of objects") from None
            records.append(_record_from_obj(obj, f"{path}:{lineno}"))
    else:
        if isinstance(whole, dict):
            whole = whole["data"]
        if not isinstance(whole, list):
            raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}})")
        for i, item in enumerate(whole):
            records.append(_record_from_obj(item, f"{path}: item {i}"))
    if not records:
        raise DataError(f"{path}: the dataset is empty; it needs at least one record")
    return records


def write_qa(records: Iterable[QARecord], path: str | os.PathLike[str]) -> Path:
    """Write records as JSONL atomically (a temporary file renamed into place)."""
    lines = [json.dumps(rec.to_json(), ensure_ascii=False) + "\n" for rec in records]
    return atomic_write_text(path, "".join(lines))
