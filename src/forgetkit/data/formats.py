"""Where QA rows come from, and the shapes a row may have.

A data source (``--data``, ``--forget``, ``--retain``, ``--ft``, ``--unseen``, ``--known``) is:

* a JSON array or a JSON Lines file (which one is decided by the content, not the name);
* a ``.parquet``, ``.csv`` or ``.tsv`` file;
* a folder written by ``datasets.Dataset.save_to_disk`` (a ``DatasetDict`` folder takes its
  ``train`` split, or the one named after ``@``: ``folder@test``);
* ``hf:NAME[:CONFIG][@SPLIT]``, a dataset on the Hugging Face Hub (split ``train`` by
  default), read through the ``datasets`` library and its cache.

A row is one of:

* forgetkit's own ``{question, answer, subject?, context?, meta?}``, with TOFU's
  ``paraphrased_answer`` and ``perturbed_answer`` kept for the unlearning suite and PISTOL's
  ``edge`` read as the subject;
* TRL's conversational ``{messages: [{role, content}, ...]}``: the last assistant turn is the
  answer, the user turn before it the question, and every earlier turn (a system turn
  included) the context the question is asked in;
* TRL's ``{prompt, completion}``, each a string or a list of messages;
* SQuAD's ``{context, question, answers: {text: [...]}}``: a ``context`` that is a string is
  a passage to read, asked in the same user turn before the question; the first of
  ``answers.text`` is the answer (an empty list, SQuAD 2.0's unanswerable question, is
  refused: forgetkit needs the reply to learn or score).

``Fields`` renames the question, answer and subject columns of other datasets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgetkit.errors import UserError


class DataError(UserError):
    """A dataset is malformed or cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Fields:
    """The column names of a dataset's question, answer and subject."""

    question: str = "question"
    answer: str = "answer"
    subject: str = "subject"

    @classmethod
    def of(cls, options: Any) -> Fields:
        """The fields an options object names (``question_field``...), defaults elsewhere."""
        return cls(*(getattr(options, f"{name}_field", default)
                     for name, default in (("question", "question"), ("answer", "answer"),
                                           ("subject", "subject"))))


Row = Mapping[str, Any]
HUB_PREFIX = "hf:"
_DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {raw[err.start]:#04x} at offset "
                        f"{err.start}); save the file as UTF-8") from None


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    text = read_text(path)
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
            yield f"{path}:{lineno}", obj
        return
    if isinstance(whole, dict):
        whole = whole["data"]
    if not isinstance(whole, list):
        raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}})")
    for i, item in enumerate(whole):
        yield f"{path}: item {i}", item


def _csv_rows(path: Path) -> Iterator[tuple[str, Any]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=delimiter)
    for row in reader:
        yield f"{path}:{reader.line_num}", dict(row)


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise DataError(f"{path}: not a readable parquet file ({err})") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}: row {i}", row


def _split_of(dataset: Any, where: str, split: str | None) -> Any:
    """One split of a ``DatasetDict`` (``train`` unless named); a ``Dataset`` as it is."""
    if not hasattr(dataset, "keys"):
        if split:
            raise DataError(f"{where}: holds one split, so '@{split}' does not apply")
        return dataset
    name = split or "train"
    if name not in dataset:
        raise DataError(f"{where}: no split '{name}'; it has {sorted(dataset.keys())}: name "
                        f"one with {where}@SPLIT")
    return dataset[name]


def _dataset_rows(dataset: Any, where: str) -> Iterator[tuple[str, Any]]:
    for i, row in enumerate(dataset):
        yield f"{where}: row {i}", row


def _disk_rows(folder: Path, split: str | None) -> Iterator[tuple[str, Any]]:
    from datasets import load_from_disk

    return _dataset_rows(_split_of(load_from_disk(str(folder)), str(folder), split), str(folder))


def _hub_rows(spec: str) -> Iterator[tuple[str, Any]]:
    from datasets import load_dataset

    body = spec[len(HUB_PREFIX):]
    body, _, split = body.partition("@")
    name, _, config = body.partition(":")
    if not name:
        raise DataError(f"'{spec}': give a dataset name, as hf:NAME[:CONFIG][@SPLIT]")
    try:
        dataset = load_dataset(name, config or None, split=split or "train")
    except Exception as err:  # noqa: BLE001 - offline, unknown name, gated...: say which
        raise DataError(f"'{spec}': could not load the dataset {name}"
                        f"{' (config ' + config + ')' if config else ''}, split "
                        f"{split or 'train'}: {type(err).__name__}: {err}. Where the hub is not "
                        "reachable, save it with datasets' save_to_disk elsewhere and pass the "
                        "folder") from None
    return _dataset_rows(dataset, spec)


def iter_rows(source: str | Path) -> Iterator[tuple[str, Any]]:
    """``(where, row)`` for each row of a data source; ``where`` is ``file:line`` or alike."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return _hub_rows(text)
    path, split = Path(text), None
    if not path.exists() and "@" in path.name:
        base, _, split = text.rpartition("@")
        path = Path(base)
    if path.is_dir():
        if not any((path / m).is_file() for m in _DISK_MARKERS):
            raise DataError(f"{path}: a folder, but not one written by datasets' save_to_disk "
                            f"(no {' or '.join(_DISK_MARKERS)}); give a data file instead")
        return _disk_rows(path, split)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path)
    if suffix in (".csv", ".tsv"):
        return _csv_rows(path)
    return _json_rows(path)


# --------------------------------------------------------------------------- row shapes

def _turns(messages: Any, where: str, key: str) -> list[dict[str, str]]:
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise DataError(f"{where}: '{key}' must be a non-empty list of {{role, content}} "
                        f"messages, got {type(messages).__name__}")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) \
                or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: {key}[{i}] must be an object with string 'role' and "
                            f"'content', got {m!r:.80}")
        turns.append({"role": m["role"], "content": m["content"]})
    return turns


def _from_messages(turns: list[dict[str, str]], where: str,
                   key: str) -> tuple[str, str, list[dict[str, str]]]:
    """Question, answer and context of a conversation: the loss goes on its last assistant
    turn, asked by the user turn just before it."""
    last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
    if last is None:
        raise DataError(f"{where}: '{key}' has no assistant turn to learn")
    if last == 0 or turns[last - 1]["role"] != "user":
        raise DataError(f"{where}: the last assistant turn of '{key}' does not answer a user "
                        "turn")
    return turns[last - 1]["content"], turns[last]["content"], turns[: last - 1]


def _squad_answer(answers: Any, where: str) -> Any:
    """The first reference answer of SQuAD's ``answers: {text: [...], answer_start: [...]}``
    (a list of strings is taken as it is)."""
    texts = answers.get("text") if isinstance(answers, Mapping) else answers
    if not isinstance(texts, Sequence) or isinstance(texts, str):
        raise DataError(f"{where}: 'answers' must be SQuAD's {{text: [...]}} or a list of "
                        f"strings, got {type(answers).__name__}")
    if not texts:
        raise DataError(f"{where}: 'answers' is empty (an unanswerable question); forgetkit "
                        "needs a reference answer: drop such rows or give --answer-field")
    return texts[0]


def shape_of(row: Row, fields: Fields) -> str:
    """Which row shape ``row`` has: qa, messages or prompt-completion."""
    if fields.question in row or fields.answer in row:
        return "qa"
    if "messages" in row:
        return "messages"
    if "prompt" in row and "completion" in row:
        return "prompt-completion"
    return "qa"  # missing fields are reported against forgetkit's own shape


def normalise(row: Any, where: str, fields: Fields = Fields()) -> dict[str, Any]:
    """A row of any accepted shape as forgetkit's own ``{question, answer, subject, context,
    meta}`` (values not yet validated)."""
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected an object with 'question' and 'answer', "
                        f"got {type(row).__name__}")
    shape = shape_of(row, fields)
    context: list[dict[str, str]] = []
    if shape == "messages":
        question, answer, context = _from_messages(_turns(row["messages"], where, "messages"),
                                                   where, "messages")
    elif shape == "prompt-completion":
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, str):
            question = prompt
        else:
            turns = _turns(prompt, where, "prompt")
            if turns[-1]["role"] != "user":
                raise DataError(f"{where}: the prompt's last message must be the user's")
            question, context = turns[-1]["content"], turns[:-1]
        if isinstance(completion, str):
            answer = completion
        else:
            replies = [t for t in _turns(completion, where, "completion")
                       if t["role"] == "assistant"]
            if not replies:
                raise DataError(f"{where}: 'completion' has no assistant message")
            answer = replies[0]["content"]
    else:
        if fields.answer not in row and "answers" in row:
            row = {**row, fields.answer: _squad_answer(row["answers"], where)}
        missing = [k for k in (fields.question, fields.answer) if k not in row]
        if missing:
            raise DataError(f"{where}: missing field(s) {missing}; every record needs "
                            f"'{fields.question}' and '{fields.answer}', or 'messages', or "
                            f"'prompt' and 'completion' (found keys: {sorted(row)})")
        question, answer = row[fields.question], row[fields.answer]
        raw_context = row.get("context")
        if isinstance(raw_context, str):  # a passage (SQuAD): read, then asked about
            if raw_context.strip() and isinstance(question, str):
                question = f"{raw_context.strip()}\n\n{question}"
        elif raw_context:
            context = _turns(raw_context, where, "context")
    return {"question": question, "answer": answer, "subject": row.get(fields.subject),
            "context": context, "row": row}


__all__ = ["HUB_PREFIX", "DataError", "Fields", "iter_rows", "normalise", "read_text",
           "shape_of"]
