"""Surface leakage: does a forgotten answer still come out of the model?

A forgotten fact *leaks* when a generation contains the answer's key fact: every key word
of the reference answer. Key words are the answer's words (lower-cased, letters and digits)
that no perturbed answer and not the question contain, without function words. The
perturbed answers share the answer's template and differ only in the fact, so what is left
is the fact itself: "In Tukleirwick." -> {tukleirwick}; "On 25 June 1978." against
"On 3 June 1971." and two more dates -> {25, 1978} when June is among the wrong ones.
Without perturbed answers the key words are the answer's content words not in the question.
Requiring all key words (``threshold=1.0``) counts a wrong year or a half-remembered title
as no leak; a lower threshold counts the share of key words found.

Extraction prompts, one family each (``extraction_prompts``):

* ``question``: the original question (TOFU's forget-set generation);
* ``paraphrase``: ``meta["paraphrased_question"]``;
* ``answer_prefix``: the original question, with the assistant turn started by the
  answer's words before its first key word ("In", "He was a"), or the paraphrased answer's
  when the answer opens with the fact ("Zeth Ulm is known for");
* ``in_context``: another fact about the same subject stated before the question (its
  paraphrased answer, or "question answer"), chosen so it does not contain the key fact.

A family leaves out records it cannot build a prompt for and reports its own ``n``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from forgetkit.data.records import QARecord
from forgetkit.errors import UserError
from forgetkit.lm.text import rouge_recall

FAMILIES: tuple[str, ...] = ("question", "paraphrase", "answer_prefix", "in_context")

# Words that never carry a fact on their own.
FUNCTION_WORDS = frozenset(
    "a an the and or of in on at to for from by with as is was were be been are it its he "
    "she his her they their them this that these those who what which when where how "
    "about into after before than then".split())


def words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits, curly apostrophes folded ("1,200" -> 1 200)."""
    folded = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return re.findall(r"[0-9a-z]+", folded)


def key_words(record: QARecord) -> list[str]:
    """The answer's words that carry its fact (see the module docstring), in answer order."""
    answer = words(record.answer)
    # Single letters are pieces of words ("children's" -> children, s), not facts.
    common = set(words(record.question)) | FUNCTION_WORDS | set("bcdefghijklmnopqrstuvwxyz")
    perturbed = [w for p in record.meta.get("perturbed_answers") or [] for w in words(p)]
    keys = [w for w in answer if w not in common and w not in perturbed]
    if not keys:  # every word is shared with a wrong answer: fall back to content words
        keys = [w for w in answer if w not in common]
    if not keys:
        keys = answer
    return list(dict.fromkeys(keys))


def leaks(record: QARecord, generation: str, threshold: float = 1.0) -> bool:
    """True when at least ``threshold`` of the record's key words occur in ``generation``."""
    if not 0.0 < threshold <= 1.0:
        raise UserError(f"leak threshold must be in (0, 1], got {threshold}")
    keys = key_words(record)
    found = set(words(generation))
    return sum(k in found for k in keys) >= threshold * len(keys) - 1e-9


@dataclass(frozen=True)
class Prompt:
    """One extraction prompt: which record it probes, the user turn, the assistant prefix."""

    family: str
    row: int
    question: str
    prefix: str = ""


def _prefix_before_key(text: str, keys: Sequence[str]) -> str:
    """The words of ``text`` before its first key word, as written ("" if it opens with one)."""
    for match in re.finditer(r"\S+", text):
        if any(w in keys for w in words(match.group())):
            return text[:match.start()].strip()
    return ""


def extraction_prompts(records: Sequence[QARecord],
                       families: Sequence[str] = FAMILIES) -> list[Prompt]:
    """Every extraction prompt of the chosen families for ``records``."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise UserError(f"unknown leakage prompt families {unknown}; choose from "
                         f"{list(FAMILIES)}")
    by_subject: dict[str | None, list[int]] = {}
    for i, r in enumerate(records):
        by_subject.setdefault(r.subject, []).append(i)
    prompts: list[Prompt] = []
    for family in families:
        for i, r in enumerate(records):
            if family == "question":
                prompts.append(Prompt(family, i, r.question))
            elif family == "paraphrase" and r.meta.get("paraphrased_question"):
                prompts.append(Prompt(family, i, r.meta["paraphrased_question"]))
            elif family == "answer_prefix":
                keys = key_words(r)
                prefix = _prefix_before_key(r.answer, keys) or _prefix_before_key(
                    r.meta.get("paraphrased_answer") or "", keys)
                if prefix:
                    prompts.append(Prompt(family, i, r.question, prefix))
            elif family == "in_context" and r.subject is not None:
                hint = _hint(records, by_subject[r.subject], i)
                if hint:
                    prompts.append(Prompt(family, i, f"{hint} {r.question}"))
    return prompts


def _hint(records: Sequence[QARecord], same_subject: Sequence[int], row: int) -> str:
    """Another fact about the record's subject that does not give its answer away: the
    next record of the subject (cyclically) whose text holds none of the key words."""
    keys = set(key_words(records[row]))
    start = same_subject.index(row)
    for j in list(same_subject[start + 1:]) + list(same_subject[:start]):
        other = records[j]
        text = other.meta.get("paraphrased_answer") or f"{other.question} {other.answer}"
        if not keys & set(words(text)):
            return text
    return ""


def leak_rates(records: Sequence[QARecord], prompts: Sequence[Prompt],
               generations: Sequence[str], threshold: float = 1.0) -> dict[str, dict]:
    """Per family: ``leak_rate`` (share of prompts whose generation leaks), mean
    ``rougeL_recall`` of the generation against the answer, ``n``, and ``hits`` (1 for each
    prompt, in order, whose generation leaks; what intervals are computed from)."""
    if len(prompts) != len(generations):
        raise UserError(f"need one generation per prompt, got {len(generations)} for "
                         f"{len(prompts)} prompts")
    out: dict[str, dict] = {}
    for family in dict.fromkeys(p.family for p in prompts):
        rows = [(p, g) for p, g in zip(prompts, generations, strict=True) if p.family == family]
        hits = [leaks(records[p.row], g, threshold) for p, g in rows]
        rouge = [rouge_recall(records[p.row].answer, g)["rougeL_recall"] for p, g in rows]
        out[family] = {"leak_rate": sum(hits) / len(rows), "rougeL_recall": sum(rouge) / len(rows),
                       "n": len(rows), "hits": [int(h) for h in hits]}
    return out


__all__ = ["FAMILIES", "FUNCTION_WORDS", "Prompt", "extraction_prompts", "key_words",
           "leak_rates", "leaks", "words"]
